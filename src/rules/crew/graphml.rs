//! graph.graphml: operators and crews as nodes, typed weighted links, for Gephi, yEd and i2.
//!
//! Written with quick-xml's writer (escaping, well-formedness). petgraph-graphml was tried on
//! paper and not taken: it declares every attribute as a string, and Gephi then cannot size
//! edges by weight or filter by it.

use anyhow::Result;
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

/// One node.
pub struct Node {
    pub id: String,
    /// `operator` or `crew`.
    pub kind: &'static str,
    pub label: String,
    pub crew: String,
    /// Rules with findings on the operator (`;`-separated), or the crew's size.
    pub rules: String,
    pub flagged: bool,
    pub size: u32,
}

/// One edge.
pub struct Edge {
    pub source: String,
    pub target: String,
    /// An evidence kind (`shared-cli`, …) or `member-of`.
    pub kind: &'static str,
    pub weight: f64,
    pub strong: bool,
    pub evidence: String,
}

/// The attribute keys: (id, for, name, type).
const KEYS: &[(&str, &str, &str, &str)] = &[
    ("d0", "node", "kind", "string"),
    ("d1", "node", "label", "string"),
    ("d2", "node", "crew", "string"),
    ("d3", "node", "rules", "string"),
    ("d4", "node", "flagged", "boolean"),
    ("d5", "node", "size", "int"),
    ("d6", "edge", "kind", "string"),
    ("d7", "edge", "weight", "double"),
    ("d8", "edge", "strong", "boolean"),
    ("d9", "edge", "evidence", "string"),
];

fn data(w: &mut Writer<&mut Vec<u8>>, key: &str, value: &str) -> Result<()> {
    w.create_element("data").with_attribute(("key", key)).write_text_content(BytesText::new(value))?;
    Ok(())
}

/// The document.
pub fn write(nodes: &[Node], edges: &[Edge]) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut w = Writer::new_with_indent(&mut buf, b' ', 1);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let mut root = BytesStart::new("graphml");
    root.push_attribute(("xmlns", "http://graphml.graphdrawing.org/xmlns"));
    root.push_attribute(("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance"));
    root.push_attribute((
        "xsi:schemaLocation",
        "http://graphml.graphdrawing.org/xmlns http://graphml.graphdrawing.org/xmlns/1.0/graphml.xsd",
    ));
    w.write_event(Event::Start(root))?;
    for (id, on, name, ty) in KEYS {
        w.create_element("key")
            .with_attributes([("id", *id), ("for", *on), ("attr.name", *name), ("attr.type", *ty)])
            .write_empty()?;
    }
    w.write_event(Event::Start(
        BytesStart::new("graph").with_attributes([("id", "operators"), ("edgedefault", "undirected")]),
    ))?;
    for n in nodes {
        w.write_event(Event::Start(BytesStart::new("node").with_attributes([("id", n.id.as_str())])))?;
        data(&mut w, "d0", n.kind)?;
        data(&mut w, "d1", &n.label)?;
        data(&mut w, "d2", &n.crew)?;
        data(&mut w, "d3", &n.rules)?;
        data(&mut w, "d4", if n.flagged { "true" } else { "false" })?;
        data(&mut w, "d5", &n.size.to_string())?;
        w.write_event(Event::End(BytesEnd::new("node")))?;
    }
    for (i, e) in edges.iter().enumerate() {
        let id = format!("e{i}");
        w.write_event(Event::Start(BytesStart::new("edge").with_attributes([
            ("id", id.as_str()),
            ("source", e.source.as_str()),
            ("target", e.target.as_str()),
        ])))?;
        data(&mut w, "d6", e.kind)?;
        data(&mut w, "d7", &format!("{}", e.weight))?;
        data(&mut w, "d8", if e.strong { "true" } else { "false" })?;
        data(&mut w, "d9", &e.evidence)?;
        w.write_event(Event::End(BytesEnd::new("edge")))?;
    }
    w.write_event(Event::End(BytesEnd::new("graph")))?;
    w.write_event(Event::End(BytesEnd::new("graphml")))?;
    buf.push(b'\n');
    Ok(buf)
}
