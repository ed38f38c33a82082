//! The tables of `cards` and `--sms`: a recharge provider's card ledger, a card shop's sales log
//! and an SMS platform's send log. Header tables (English or Chinese names), typed here as the CDRs
//! are in [`super::normalize`]: every unusable row gets a `reject_code` into its target's reasons.
//!
//! A card's PIN (卡密) is never a field: it is not read, so it reaches no frame and no output.

use super::format::{FieldSpec, Kind, Target};
use super::normalize::{first_code, ts, utc_datetime};
use crate::time::DateOrder;
use chrono_tz::Tz;
use polars::prelude::*;

macro_rules! f {
    ($name:literal, req, [$($a:literal),*]) => { FieldSpec { name: $name, aliases: &[$($a),*], required: true } };
    ($name:literal, [$($a:literal),*]) => { FieldSpec { name: $name, aliases: &[$($a),*], required: false } };
}

const CARD_ID: FieldSpec = f!(
    "card_id",
    req,
    [
        "cardid",
        "cardno",
        "cardnumber",
        "card",
        "serial",
        "serialno",
        "cardserial",
        "卡号",
        "卡序列号",
        "序列号",
        "充值卡号"
    ]
);
const FACE: FieldSpec =
    f!("face_value", req, ["facevalue", "face", "denomination", "par", "parvalue", "面值", "卡面值", "面额"]);
const CARRIER: FieldSpec = f!("carrier", ["carrier", "telco", "network", "isp", "mno", "运营商", "卡类型", "卡种"]);

pub const CARD_REASONS: &[&str] = &[
    "missing card_id",
    "missing supplier",
    "missing face_value",
    "unparseable face_value",
    "non-positive face_value",
    "missing price",
    "unparseable price",
    "missing acquired_at",
    "unparseable acquired_at",
    "unparseable stocked_at",
    "unparseable redeemed_at",
    "redeemed before acquired",
];

/// A recharge provider's card ledger: one row per card acquired (bought in or bought back).
pub static CARDS: Target = Target {
    what: "card ledger",
    kind: Kind::Cards,
    times: &["acquired_at", "stocked_at", "redeemed_at"],
    reasons: CARD_REASONS,
    fields: &[
        CARD_ID,
        CARRIER,
        FACE,
        f!(
            "supplier",
            req,
            [
                "supplier",
                "channel",
                "vendor",
                "source",
                "consignor",
                "seller",
                "供应商",
                "渠道",
                "供应商渠道",
                "供货商",
                "寄卖商",
                "来源",
                "上游"
            ]
        ),
        f!(
            "unit",
            ["unit", "buyerunit", "businessunit", "buyer", "department", "dept", "事业部", "部门", "采购单位", "单位"]
        ),
        f!(
            "price",
            req,
            [
                "price",
                "acquisitionprice",
                "purchaseprice",
                "buybackprice",
                "cost",
                "unitprice",
                "采购价",
                "回收价",
                "进价",
                "采购价格",
                "回收价格",
                "采购价回收价",
                "折扣"
            ]
        ),
        f!(
            "acquired_at",
            req,
            [
                "acquiredat",
                "acquired",
                "acquisitiontime",
                "purchasedat",
                "purchasetime",
                "buybacktime",
                "buybackat",
                "采购时间",
                "回收时间",
                "采购时间回收时间",
                "购入时间"
            ]
        ),
        f!("stocked_at", ["stockedat", "stocked", "instockat", "warehousedat", "stocktime", "入库时间"]),
        f!(
            "redeemed_at",
            [
                "redeemedat",
                "redeemed",
                "usedat",
                "usetime",
                "rechargetime",
                "rechargedat",
                "使用时间",
                "充值时间",
                "使用时间充值时间",
                "核销时间"
            ]
        ),
    ],
};

pub const SALE_REASONS: &[&str] = &[
    "missing shop",
    "missing face_value",
    "unparseable face_value",
    "non-positive face_value",
    "missing sale_price",
    "unparseable sale_price",
    "missing sold_at",
    "unparseable sold_at",
];

/// A card shop's sales log: one row per card (PIN) sold.
pub static SALES: Target = Target {
    what: "card sales log",
    kind: Kind::Sales,
    times: &["sold_at"],
    reasons: SALE_REASONS,
    fields: &[
        f!("shop", req, ["shop", "store", "merchant", "seller", "mall", "店铺", "商城", "商户", "卖家", "商家"]),
        FieldSpec { required: false, ..CARD_ID },
        CARRIER,
        FACE,
        f!(
            "sale_price",
            req,
            ["saleprice", "price", "amount", "paid", "paidamount", "售价", "销售价", "支付金额", "实付金额", "成交价"]
        ),
        f!(
            "sold_at",
            req,
            ["soldat", "saletime", "ordertime", "paidat", "time", "销售时间", "下单时间", "支付时间", "交易时间"]
        ),
        f!("buyer", ["buyer", "customer", "buyeraccount", "account", "买家", "购买人", "买家账号", "客户"]),
        f!("order_id", ["orderid", "order", "orderno", "订单号", "订单编号"]),
    ],
};

pub const SMS_REASONS: &[&str] =
    &["missing sub_account", "missing recipient", "missing sent_at", "unparseable sent_at", "missing text"];

/// An SMS platform's send log: one row per message sent.
pub static SMS: Target = Target {
    what: "SMS send log",
    kind: Kind::Sms,
    times: &["sent_at"],
    reasons: SMS_REASONS,
    fields: &[
        f!("platform", ["platform", "gateway", "provider", "平台", "短信平台", "通道"]),
        f!(
            "sub_account",
            req,
            [
                "subaccount",
                "account",
                "accountid",
                "customer",
                "client",
                "子账号",
                "子账户",
                "账号",
                "客户",
                "客户账号"
            ]
        ),
        f!("signature", ["signature", "sign", "签名", "短信签名"]),
        f!(
            "sender",
            [
                "sender",
                "sendernumber",
                "from",
                "srcnumber",
                "sourcenumber",
                "accessnumber",
                "接入号",
                "发送号码",
                "端口号",
                "发送方"
            ]
        ),
        f!(
            "recipient",
            req,
            [
                "recipient",
                "to",
                "mobile",
                "phone",
                "destnumber",
                "destination",
                "手机号",
                "接收号码",
                "号码",
                "接收方",
                "手机号码"
            ]
        ),
        f!("sent_at", req, ["sentat", "senttime", "sendtime", "submittime", "time", "发送时间", "提交时间"]),
        f!("text", req, ["text", "content", "message", "body", "msg", "短信内容", "内容", "信息内容"]),
    ],
};

/// A money amount or a rate: `97.5`, `¥97.50`, `97.5元`, `1,000`; `97.5%` and `9.75折` are
/// rates (0.975). None when it is none of these.
pub fn parse_amount(s: &str) -> Option<f64> {
    let t = s.trim().trim_start_matches(['¥', '￥', '$']).trim_end_matches(['元', ' ']);
    let (t, scale) = if let Some(p) = t.strip_suffix('%') {
        (p, 0.01)
    } else if let Some(p) = t.strip_suffix('折') {
        (p, 0.1)
    } else {
        (t, 1.0)
    };
    let v: f64 = t.trim().replace(',', "").parse().ok()?;
    v.is_finite().then_some(v * scale)
}

/// A text (or numeric) column as f64 amounts, `NAME__v`; null when empty or unparseable.
fn amount(name: &str) -> Expr {
    let out = PlSmallStr::from(format!("{name}__v"));
    let o2 = out.clone();
    col(name)
        .map(
            move |c: Column| {
                if c.dtype().is_primitive_numeric() {
                    return Ok(c.cast(&DataType::Float64)?.with_name(out.clone()));
                }
                // in parallel slices: a UDF runs on one thread, and a 10 M-row ledger has two such columns
                let ca = c.str()?;
                let parts = crate::par::slices(ca.len(), |off, len| {
                    ca.slice(off as i64, len).iter().map(|s| s.and_then(parse_amount)).collect::<Float64Chunked>()
                });
                Ok(crate::par::concat(out.as_str(), parts).into_column())
            },
            move |_, _| Ok(Field::new(o2.clone(), DataType::Float64)),
        )
        .alias(format!("{name}__v"))
}

/// The three mainland carriers under one name each (`中国移动`, `移动`, `China Mobile`, `CMCC` →
/// `CMCC`); other values as written, trimmed.
pub fn carrier_name(s: &str) -> String {
    let l = s.trim().to_lowercase();
    if l.contains("移动") || l.contains("mobile") || l == "cmcc" || l == "cm" {
        "CMCC".into()
    } else if l.contains("联通") || l.contains("unicom") || l == "cucc" || l == "cu" {
        "CUCC".into()
    } else if l.contains("电信") || l.contains("telecom") || l == "ctcc" || l == "ct" {
        "CTCC".into()
    } else {
        s.trim().to_string()
    }
}

fn carrier() -> Expr {
    col("carrier")
        .map(
            |c: Column| {
                let s = c.cast(&DataType::String)?;
                let v: StringChunked =
                    s.str()?.iter().map(|v| Some(v.map_or_else(|| "unknown".into(), carrier_name))).collect();
                Ok(v.with_name("carrier".into()).into_column())
            },
            |_, f| Ok(Field::new(f.name().clone(), DataType::String)),
        )
        .alias("carrier")
}

/// Text of a column that may arrive typed (a Parquet card id written as an integer).
fn text(name: &str) -> Expr {
    col(name).cast(DataType::String)
}

/// What a price is per 100 of face value: a rate (≤ 1.5, e.g. `0.975` or `97.5%`) times 100, else
/// price ÷ face × 100.
fn per_100(price: &str, face: &str) -> Expr {
    when(col(price).lt_eq(lit(1.5)).and(col(face).gt(lit(1.5))))
        .then(col(price) * lit(100.0))
        .otherwise(col(price) / col(face) * lit(100.0))
}

/// A present value that did not parse.
fn bad(raw: &str, parsed: &str) -> Expr {
    col(raw).is_not_null().and(col(parsed).is_null())
}

/// Type a card ledger's raw fields.
pub fn cards(raw: LazyFrame, tz: Tz, order: DateOrder) -> LazyFrame {
    raw.with_columns([
        ts("acquired_at", tz, order),
        ts("stocked_at", tz, order),
        ts("redeemed_at", tz, order),
        amount("face_value"),
        amount("price"),
    ])
    .with_column(
        first_code(vec![
            col("card_id").is_null(),
            col("supplier").is_null(),
            col("face_value").is_null(),
            col("face_value__v").is_null(),
            col("face_value__v").lt_eq(lit(0.0)),
            col("price").is_null(),
            col("price__v").is_null(),
            col("acquired_at").is_null(),
            col("acquired_at__ts").is_null(),
            bad("stocked_at", "stocked_at__ts"),
            bad("redeemed_at", "redeemed_at__ts"),
            col("redeemed_at__ts").lt(col("acquired_at__ts")),
        ])
        .alias("reject_code"),
    )
    .select([
        text("card_id").alias("card_id"),
        carrier(),
        col("face_value__v").alias("face_value"),
        text("supplier").alias("supplier"),
        text("unit").alias("unit"),
        col("price__v").alias("price"),
        per_100("price__v", "face_value__v").alias("price_per_100"),
        col("acquired_at__ts").cast(utc_datetime()).alias("acquired_at"),
        col("stocked_at__ts").cast(utc_datetime()).alias("stocked_at"),
        col("redeemed_at__ts").cast(utc_datetime()).alias("redeemed_at"),
        col("source_line"),
        col("reject_code"),
    ])
}

/// Type a card shop's sales log.
pub fn sales(raw: LazyFrame, tz: Tz, order: DateOrder) -> LazyFrame {
    raw.with_columns([ts("sold_at", tz, order), amount("face_value"), amount("sale_price")])
        .with_column(
            first_code(vec![
                col("shop").is_null(),
                col("face_value").is_null(),
                col("face_value__v").is_null(),
                col("face_value__v").lt_eq(lit(0.0)),
                col("sale_price").is_null(),
                col("sale_price__v").is_null(),
                col("sold_at").is_null(),
                col("sold_at__ts").is_null(),
            ])
            .alias("reject_code"),
        )
        .select([
            text("shop").alias("shop"),
            text("card_id").alias("card_id"),
            carrier(),
            col("face_value__v").alias("face_value"),
            col("sale_price__v").alias("sale_price"),
            per_100("sale_price__v", "face_value__v").alias("price_per_100"),
            col("sold_at__ts").cast(utc_datetime()).alias("sold_at"),
            text("buyer").alias("buyer"),
            text("order_id").alias("order_id"),
            col("source_line"),
            col("reject_code"),
        ])
}

/// Type an SMS send log.
pub fn sms(raw: LazyFrame, tz: Tz, order: DateOrder) -> LazyFrame {
    raw.with_column(ts("sent_at", tz, order))
        .with_column(
            first_code(vec![
                col("sub_account").is_null(),
                col("recipient").is_null(),
                col("sent_at").is_null(),
                col("sent_at__ts").is_null(),
                col("text").is_null(),
            ])
            .alias("reject_code"),
        )
        .select([
            text("platform").alias("platform"),
            text("sub_account").alias("sub_account"),
            text("signature").alias("signature"),
            text("sender").alias("sender"),
            text("recipient").alias("recipient"),
            col("sent_at__ts").cast(utc_datetime()).alias("sent_at"),
            text("text").alias("text"),
            col("source_line"),
            col("reject_code"),
        ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_and_rates() {
        assert_eq!(parse_amount("97.5"), Some(97.5));
        assert_eq!(parse_amount("¥97.50"), Some(97.5));
        assert_eq!(parse_amount("97.5元"), Some(97.5));
        assert_eq!(parse_amount("1,000"), Some(1000.0));
        assert!((parse_amount("97.5%").unwrap() - 0.975).abs() < 1e-12);
        assert!((parse_amount("9.75折").unwrap() - 0.975).abs() < 1e-12);
        assert_eq!(parse_amount("n/a"), None);
        assert_eq!(parse_amount(""), None);
    }

    #[test]
    fn carriers_fold() {
        for (raw, want) in
            [("中国移动", "CMCC"), ("China Unicom", "CUCC"), ("电信", "CTCC"), ("cmcc", "CMCC"), ("Sinopec", "Sinopec")]
        {
            assert_eq!(carrier_name(raw), want, "{raw}");
        }
    }
}
