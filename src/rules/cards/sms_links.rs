//! What `sms-recruitment` links the texts' contacts and recipients to: chat groups of the join log
//! (by the contact as group id or inviter, and by recipients who joined after a text) and the
//! audited calls (`scan --sms`: recipients who were called).

use super::LedgerInput;
use super::sms_recruitment::SmsConfig;
use anyhow::Result;
use polars::prelude::*;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// One sub-account's links.
#[derive(Clone, Debug, Default)]
pub struct AccountLinks {
    /// Chat groups named by its contacts or joined by its recipients after a text.
    pub groups: Vec<String>,
    /// Distinct recipients who joined a chat group within the window after a text.
    pub joined: u64,
    /// Distinct recipients the audited operators called.
    pub called: u64,
    pub operators: Vec<String>,
}

pub struct Links {
    /// contacts.csv: one row per contact.
    pub contacts: DataFrame,
    pub by_account: HashMap<String, AccountLinks>,
}

/// Pairs of (key, recipient) → (groups, operators) sets, folded per key.
#[derive(Default)]
struct Fold {
    recipients: BTreeSet<u64>,
    groups: BTreeSet<String>,
    operators: BTreeSet<String>,
}

fn strs<'a>(df: &'a DataFrame, c: &str) -> Result<&'a StringChunked> {
    Ok(df.column(c)?.str()?)
}

/// Recipients (texted by `recruit`'s rows) who joined a group within the window: (row, group).
fn joined_pairs(recruit: &LazyFrame, joins: &DataFrame, window_us: i64) -> Result<DataFrame> {
    let j = joins.clone().lazy().filter(col("member_num").is_not_null()).select([
        col("member_num").alias("recipient_num"),
        col("group_id"),
        col("joined_at").dt().timestamp(TimeUnit::Microseconds).alias("joined_us"),
    ]);
    Ok(recruit
        .clone()
        .join(j, [col("recipient_num")], [col("recipient_num")], JoinArgs::new(JoinType::Inner))
        .filter(col("joined_us").gt_eq(col("sent_us")).and(col("joined_us").lt_eq(col("sent_us") + lit(window_us))))
        .select([col("sub_account"), col("contacts"), col("recipient_num"), col("group_id")])
        .collect()?)
}

/// Per contact: its links to joins, its links to calls, its sub-accounts, messages, recipients.
type ContactFolds = BTreeMap<String, (Fold, Fold, BTreeSet<String>, u64, BTreeSet<u64>)>;

/// contacts.csv from the folds.
fn table(con: &ContactFolds, named: &HashMap<String, BTreeSet<String>>) -> Result<DataFrame> {
    let join = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(";");
    let (mut c_name, mut c_kind, mut c_acc, mut c_msgs, mut c_rcpt) = (vec![], vec![], vec![], vec![], vec![]);
    let (mut c_named, mut c_groups, mut c_joined, mut c_called, mut c_ops) = (vec![], vec![], vec![], vec![], vec![]);
    for (ct, (joined, called, accounts, msgs, rcpts)) in con {
        let (kind, value) = ct.split_once(':').unwrap_or(("?", ct.as_str()));
        c_name.push(value.to_string());
        c_kind.push(kind.to_string());
        c_acc.push(join(accounts));
        c_msgs.push(*msgs as i64);
        c_rcpt.push(rcpts.len() as i64);
        c_named.push(named.get(value).map(join).unwrap_or_default());
        c_groups.push(join(&joined.groups));
        c_joined.push(joined.recipients.len() as i64);
        c_called.push(called.recipients.len() as i64);
        c_ops.push(join(&called.operators));
    }
    let n = c_name.len();
    let contacts = DataFrame::new(
        n,
        vec![
            Column::new("contact".into(), c_name),
            Column::new("kind".into(), c_kind),
            Column::new("sub_accounts".into(), c_acc),
            Column::new("messages".into(), c_msgs),
            Column::new("recipients".into(), c_rcpt),
            Column::new("groups_named".into(), c_named),
            Column::new("groups_joined".into(), c_groups),
            Column::new("recipients_joined".into(), c_joined),
            Column::new("recipients_called".into(), c_called),
            Column::new("calling_operators".into(), c_ops),
        ],
    )?;
    Ok(contacts)
}

pub fn links(recruit: &DataFrame, input: &LedgerInput, c: &SmsConfig) -> Result<Links> {
    let r = recruit.clone().lazy().filter(col("recipient_num").is_not_null()).select([
        col("sub_account"),
        col("contacts"),
        col("recipient_num"),
        col("sent_at").dt().timestamp(TimeUnit::Microseconds).alias("sent_us"),
    ]);
    let mut acc: BTreeMap<String, Fold> = BTreeMap::new();
    let mut con: ContactFolds = BTreeMap::new();
    // every contact: its accounts, messages and recipients
    {
        let (a, k, n) =
            (strs(recruit, "sub_account")?, strs(recruit, "contacts")?, recruit.column("recipient_num")?.u64()?);
        for i in 0..recruit.height() {
            for ct in k.get(i).unwrap_or("").split(';').filter(|s| !s.is_empty()) {
                let e = con.entry(ct.to_string()).or_default();
                e.2.insert(a.get(i).unwrap_or("").to_string());
                e.3 += 1;
                if let Some(n) = n.get(i) {
                    e.4.insert(n);
                }
            }
        }
    }
    // groups named by a contact: the group's id or its inviter is the contact's value
    let mut named: HashMap<String, BTreeSet<String>> = HashMap::new();
    if let Some(j) = &input.joins {
        let pairs = j.select(["group_id", "inviter"])?.unique_stable(None, UniqueKeepStrategy::First, None)?;
        let (g, inv) = (strs(&pairs, "group_id")?, strs(&pairs, "inviter")?);
        for i in 0..pairs.height() {
            for v in [g.get(i), inv.get(i)].into_iter().flatten() {
                named.entry(v.to_string()).or_default().insert(g.get(i).unwrap_or("").to_string());
            }
        }
        let window = i64::from(c.join_window_days) * 86_400 * 1_000_000;
        let jp = joined_pairs(&r, j, window)?;
        let (a, k, n, g) = (
            strs(&jp, "sub_account")?,
            strs(&jp, "contacts")?,
            jp.column("recipient_num")?.u64()?,
            strs(&jp, "group_id")?,
        );
        for i in 0..jp.height() {
            let (num, group) = (n.get(i).unwrap_or(0), g.get(i).unwrap_or("").to_string());
            let f = acc.entry(a.get(i).unwrap_or("").to_string()).or_default();
            f.recipients.insert(num);
            f.groups.insert(group.clone());
            for ct in k.get(i).unwrap_or("").split(';').filter(|s| !s.is_empty()) {
                let e = con.entry(ct.to_string()).or_default();
                e.0.recipients.insert(num);
                e.0.groups.insert(group.clone());
            }
        }
    }
    let mut called_acc: BTreeMap<String, Fold> = BTreeMap::new();
    if let Some(called) = &input.called {
        let cp = r
            .clone()
            .join(called.clone().lazy(), [col("recipient_num")], [col("recipient_num")], JoinArgs::new(JoinType::Inner))
            .select([col("sub_account"), col("contacts"), col("recipient_num"), col("operator_id")])
            .collect()?;
        let (a, k, n, o) = (
            strs(&cp, "sub_account")?,
            strs(&cp, "contacts")?,
            cp.column("recipient_num")?.u64()?,
            strs(&cp, "operator_id")?,
        );
        for i in 0..cp.height() {
            let (num, op) = (n.get(i).unwrap_or(0), o.get(i).unwrap_or("").to_string());
            let f = called_acc.entry(a.get(i).unwrap_or("").to_string()).or_default();
            f.recipients.insert(num);
            f.operators.insert(op.clone());
            for ct in k.get(i).unwrap_or("").split(';').filter(|s| !s.is_empty()) {
                let e = con.entry(ct.to_string()).or_default();
                e.1.recipients.insert(num);
                e.1.operators.insert(op.clone());
            }
        }
    }
    let mut by_account: HashMap<String, AccountLinks> = HashMap::new();
    for (name, f) in &acc {
        let e = by_account.entry(name.clone()).or_default();
        e.joined = f.recipients.len() as u64;
        e.groups = f.groups.iter().cloned().collect();
    }
    for (name, f) in &called_acc {
        let e = by_account.entry(name.clone()).or_default();
        e.called = f.recipients.len() as u64;
        e.operators = f.operators.iter().cloned().collect();
    }
    // a sub-account's contacts name groups too
    for (ct, (_, _, accounts, _, _)) in &con {
        let value = ct.split_once(':').map_or(ct.as_str(), |(_, v)| v);
        if let Some(gs) = named.get(value) {
            for a in accounts {
                let e = by_account.entry(a.clone()).or_default();
                e.groups.extend(gs.iter().cloned());
                e.groups.sort();
                e.groups.dedup();
            }
        }
    }
    let contacts = table(&con, &named)?;
    Ok(Links { contacts, by_account })
}
