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

/// The distinct recipients of one sub-account or contact, and their tags (the groups they joined,
/// or the operators who called them).
#[derive(Default)]
struct Fold {
    recipients: BTreeSet<u64>,
    tags: BTreeSet<String>,
}

type Folds = BTreeMap<String, Fold>;

/// One contact: the sub-accounts that sent it, its messages, their recipients.
#[derive(Default)]
struct Contact {
    accounts: BTreeSet<String>,
    messages: u64,
    recipients: BTreeSet<u64>,
}

fn strs<'a>(df: &'a DataFrame, c: &str) -> Result<&'a StringChunked> {
    Ok(df.column(c)?.str()?)
}

/// A row's contacts (`;`-separated).
fn contacts_of(k: Option<&str>) -> impl Iterator<Item = &str> {
    k.unwrap_or("").split(';').filter(|s| !s.is_empty())
}

/// Rows of (sub_account, contacts, recipient_num, `tag`) folded per sub-account and per contact.
fn fold(df: &DataFrame, tag: &str) -> Result<(Folds, Folds)> {
    let (a, k) = (strs(df, "sub_account")?, strs(df, "contacts")?);
    let (n, t) = (df.column("recipient_num")?.u64()?, strs(df, tag)?);
    let (mut by_account, mut by_contact) = (Folds::new(), Folds::new());
    for i in 0..df.height() {
        let (num, tag) = (n.get(i).unwrap_or(0), t.get(i).unwrap_or(""));
        let add = |map: &mut Folds, key: &str| {
            let f = map.entry(key.to_string()).or_default();
            f.recipients.insert(num);
            f.tags.insert(tag.to_string());
        };
        add(&mut by_account, a.get(i).unwrap_or(""));
        for ct in contacts_of(k.get(i)) {
            add(&mut by_contact, ct);
        }
    }
    Ok((by_account, by_contact))
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

/// contacts.csv from the contacts and their folds.
fn table(
    con: &BTreeMap<String, Contact>,
    joined: &Folds,
    called: &Folds,
    named: &HashMap<String, BTreeSet<String>>,
) -> Result<DataFrame> {
    let join = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(";");
    let none = Fold::default();
    let (mut c_name, mut c_kind, mut c_acc, mut c_msgs, mut c_rcpt) = (vec![], vec![], vec![], vec![], vec![]);
    let (mut c_named, mut c_groups, mut c_joined, mut c_called, mut c_ops) = (vec![], vec![], vec![], vec![], vec![]);
    for (ct, c) in con {
        let (kind, value) = ct.split_once(':').unwrap_or(("?", ct.as_str()));
        let (j, k) = (joined.get(ct).unwrap_or(&none), called.get(ct).unwrap_or(&none));
        c_name.push(value.to_string());
        c_kind.push(kind.to_string());
        c_acc.push(join(&c.accounts));
        c_msgs.push(c.messages as i64);
        c_rcpt.push(c.recipients.len() as i64);
        c_named.push(named.get(value).map(join).unwrap_or_default());
        c_groups.push(join(&j.tags));
        c_joined.push(j.recipients.len() as i64);
        c_called.push(k.recipients.len() as i64);
        c_ops.push(join(&k.tags));
    }
    Ok(DataFrame::new(
        c_name.len(),
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
    )?)
}

pub fn links(recruit: &DataFrame, input: &LedgerInput, c: &SmsConfig) -> Result<Links> {
    let r = recruit.clone().lazy().filter(col("recipient_num").is_not_null()).select([
        col("sub_account"),
        col("contacts"),
        col("recipient_num"),
        col("sent_at").dt().timestamp(TimeUnit::Microseconds).alias("sent_us"),
    ]);
    // every contact: its accounts, messages and recipients
    let mut con: BTreeMap<String, Contact> = BTreeMap::new();
    let (a, k, n) =
        (strs(recruit, "sub_account")?, strs(recruit, "contacts")?, recruit.column("recipient_num")?.u64()?);
    for i in 0..recruit.height() {
        for ct in contacts_of(k.get(i)) {
            let e = con.entry(ct.to_string()).or_default();
            e.accounts.insert(a.get(i).unwrap_or("").to_string());
            e.messages += 1;
            e.recipients.extend(n.get(i));
        }
    }
    // groups named by a contact (the group's id or its inviter is the contact's value), and the
    // recipients who joined a group within the window after a text
    let mut named: HashMap<String, BTreeSet<String>> = HashMap::new();
    let (mut joined_acc, mut joined_con) = (Folds::new(), Folds::new());
    if let Some(j) = &input.joins {
        let pairs = j.select(["group_id", "inviter"])?.unique_stable(None, UniqueKeepStrategy::First, None)?;
        let (g, inv) = (strs(&pairs, "group_id")?, strs(&pairs, "inviter")?);
        for i in 0..pairs.height() {
            for v in [g.get(i), inv.get(i)].into_iter().flatten() {
                named.entry(v.to_string()).or_default().insert(g.get(i).unwrap_or("").to_string());
            }
        }
        let window = i64::from(c.join_window_days) * 86_400 * 1_000_000;
        (joined_acc, joined_con) = fold(&joined_pairs(&r, j, window)?, "group_id")?;
    }
    // the recipients the audited operators called
    let (mut called_acc, mut called_con) = (Folds::new(), Folds::new());
    if let Some(called) = &input.called {
        let cp = r
            .clone()
            .join(called.clone().lazy(), [col("recipient_num")], [col("recipient_num")], JoinArgs::new(JoinType::Inner))
            .select([col("sub_account"), col("contacts"), col("recipient_num"), col("operator_id")])
            .collect()?;
        (called_acc, called_con) = fold(&cp, "operator_id")?;
    }
    let mut by_account: HashMap<String, AccountLinks> = HashMap::new();
    for (name, f) in &joined_acc {
        let e = by_account.entry(name.clone()).or_default();
        e.joined = f.recipients.len() as u64;
        e.groups = f.tags.iter().cloned().collect();
    }
    for (name, f) in &called_acc {
        let e = by_account.entry(name.clone()).or_default();
        e.called = f.recipients.len() as u64;
        e.operators = f.tags.iter().cloned().collect();
    }
    // a sub-account's contacts name groups too
    for (ct, contact) in &con {
        let value = ct.split_once(':').map_or(ct.as_str(), |(_, v)| v);
        if let Some(gs) = named.get(value) {
            for a in &contact.accounts {
                let e = by_account.entry(a.clone()).or_default();
                e.groups.extend(gs.iter().cloned());
                e.groups.sort();
                e.groups.dedup();
            }
        }
    }
    let contacts = table(&con, &joined_con, &called_con, &named)?;
    Ok(Links { contacts, by_account })
}
