"""diversion-audit on Apache Spark: the native scan's rules over `diversion-audit normalize` output.

Numbers, IP addresses, formats and call legs are never parsed here: `normalize` did that, and this
package reads its canonical Parquet (docs/scale-out.md). Each module mirrors a part of the native
engine; the parity test (tests/spark_parity.rs) holds them to the same findings and shifts.
"""

SCHEMA_VERSION = 1
