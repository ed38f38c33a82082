//! Rendering: HTML (self-contained, no network: inline CSS, inline SVG charts, no scripts), Markdown
//! and JSON, through minijinja templates (auto-escaping on for HTML, so an operator id or caller ID
//! such as `<script>` is shown as text). Chart geometry is computed here; the templates only place it.

use super::crews::CrewPage;
use super::{Dossier, Report};
use anyhow::Result;
use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment, Value, context};
use serde::Serialize;

const REPORT_HTML: &str = include_str!("../../templates/report.html.j2");
const DOSSIER_HTML: &str = include_str!("../../templates/dossier.html.j2");
const DOSSIER_MD: &str = include_str!("../../templates/dossier.md.j2");
const CREW_HTML: &str = include_str!("../../templates/crew.html.j2");
const CREW_MD: &str = include_str!("../../templates/crew.md.j2");
const PARTY_HTML: &str = include_str!("../../templates/party.html.j2");
const PARTY_MD: &str = include_str!("../../templates/party.md.j2");
const STYLE: &str = include_str!("../../templates/style.css");

fn env() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|name| if name.ends_with(".html") { AutoEscape::Html } else { AutoEscape::None });
    // Markdown table cells: a `|` or a line break from the input must not break the table.
    env.add_filter("md", |s: String| s.replace('|', "\\|").replace(['\n', '\r'], " "));
    env.add_template("report.html", REPORT_HTML).expect("report template");
    env.add_template("dossier.html", DOSSIER_HTML).expect("dossier template");
    env.add_template("dossier.md", DOSSIER_MD).expect("markdown template");
    env.add_template("crew.html", CREW_HTML).expect("crew template");
    env.add_template("crew.md", CREW_MD).expect("crew markdown template");
    env.add_template("party.html", PARTY_HTML).expect("party template");
    env.add_template("party.md", PARTY_MD).expect("party markdown template");
    env
}

#[derive(Serialize)]
struct Bar {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
    label: String,
    flagged: bool,
}

#[derive(Serialize)]
struct Tick {
    x: f64,
    y: f64,
    label: String,
}

#[derive(Serialize)]
struct Chart {
    width: f64,
    height: f64,
    bars: Vec<Bar>,
    xticks: Vec<Tick>,
    yticks: Vec<Tick>,
    /// The 8-10 h band (daily chart only): y and height.
    band: Option<(f64, f64)>,
}

const LEFT: f64 = 90.0;
const TOP: f64 = 10.0;

/// Each shift as a bar across the hours of its start day (0-36 h so night shifts stay whole).
fn timeline(d: &Dossier) -> Chart {
    let mut days: Vec<&str> = d.shifts.iter().map(|s| s.day.as_str()).collect();
    days.dedup();
    let row = 22.0;
    let hours = 36.0;
    let plot_w = 620.0;
    let sx = plot_w / hours;
    let bars = d
        .shifts
        .iter()
        .map(|s| {
            let r = days.iter().position(|x| *x == s.day).unwrap_or(0) as f64;
            Bar {
                x: LEFT + s.start_hour * sx,
                y: TOP + r * row + 3.0,
                w: (s.span_h.min(hours - s.start_hour) * sx).max(1.5),
                h: row - 6.0,
                label: format!("{:.1} h talk", s.talk_h),
                flagged: s.flagged,
            }
        })
        .collect();
    let xticks = (0..=36)
        .step_by(6)
        .map(|h| Tick {
            x: LEFT + h as f64 * sx,
            y: TOP + days.len() as f64 * row + 14.0,
            label: format!("{:02}:00", h % 24),
        })
        .collect();
    rows_chart(&days, row, plot_w + 10.0, bars, xticks)
}

/// A chart of one labelled row per `labels` entry (`row` px high), its plot `width` px right of
/// the labels.
fn rows_chart(labels: &[&str], row: f64, width: f64, bars: Vec<Bar>, xticks: Vec<Tick>) -> Chart {
    let yticks = labels
        .iter()
        .enumerate()
        .map(|(i, l)| Tick { x: LEFT - 6.0, y: TOP + i as f64 * row + row / 2.0 + 4.0, label: l.to_string() })
        .collect();
    Chart { width: LEFT + width, height: TOP + labels.len() as f64 * row + 24.0, bars, xticks, yticks, band: None }
}

/// Talk hours per local day with the 8-10 h quota band shaded.
fn daily(d: &Dossier, band: [f64; 2]) -> Chart {
    let plot_h = 160.0;
    let max_h = d.daily.iter().map(|x| x.talk_h).fold(12.0, f64::max).ceil();
    let sy = plot_h / max_h;
    let bw = 34.0;
    let gap = 14.0;
    let bars = d
        .daily
        .iter()
        .enumerate()
        .map(|(i, x)| Bar {
            x: LEFT + i as f64 * (bw + gap),
            y: TOP + plot_h - x.talk_h * sy,
            w: bw,
            h: x.talk_h * sy,
            label: format!("{:.1}", x.talk_h),
            flagged: x.talk_h >= band[0],
        })
        .collect();
    let xticks = d
        .daily
        .iter()
        .enumerate()
        .map(|(i, x)| Tick {
            x: LEFT + i as f64 * (bw + gap) + bw / 2.0,
            y: TOP + plot_h + 14.0,
            label: x.day[5..].to_string(),
        })
        .collect();
    let yticks = (0..=max_h as i64)
        .step_by(2)
        .map(|h| Tick { x: LEFT - 6.0, y: TOP + plot_h - h as f64 * sy + 4.0, label: format!("{h} h") })
        .collect();
    let n = d.daily.len().max(1) as f64;
    Chart {
        width: LEFT + n * (bw + gap) + 20.0,
        height: TOP + plot_h + 24.0,
        bars,
        xticks,
        yticks,
        band: Some((TOP + plot_h - band[1] * sy, (band[1] - band[0]) * sy)),
    }
}

/// Minutes from the end of the call to the join, in 5-minute bins (joins during the call: "<0").
fn histogram(d: &Dossier) -> Option<Chart> {
    let c = d.conversions.as_ref()?;
    let mut bins = [0usize; 14];
    for m in &c.minutes_to_join {
        let k = if *m < 0.0 { 0 } else { ((*m / 5.0).floor() as usize + 1).min(13) };
        bins[k] += 1;
    }
    let plot_h = 100.0;
    let max = (*bins.iter().max().unwrap_or(&1)).max(1) as f64;
    let bw = 30.0;
    let bars = bins
        .iter()
        .enumerate()
        .map(|(i, n)| Bar {
            x: LEFT + i as f64 * (bw + 4.0),
            y: TOP + plot_h - *n as f64 / max * plot_h,
            w: bw,
            h: *n as f64 / max * plot_h,
            label: n.to_string(),
            flagged: false,
        })
        .collect();
    let xticks = (0..14)
        .map(|i| Tick {
            x: LEFT + i as f64 * (bw + 4.0) + bw / 2.0,
            y: TOP + plot_h + 14.0,
            label: match i {
                0 => "<0".into(),
                13 => "60+".into(),
                _ => format!("{}", (i - 1) * 5),
            },
        })
        .collect();
    Some(Chart {
        width: LEFT + 14.0 * (bw + 4.0) + 10.0,
        height: TOP + plot_h + 24.0,
        bars,
        xticks,
        yticks: vec![],
        band: None,
    })
}

#[derive(Serialize)]
struct DossierView<'a> {
    d: &'a Dossier,
    timeline: Chart,
    daily: Chart,
    histogram: Option<Chart>,
}

fn view(d: &Dossier, band: [f64; 2]) -> DossierView<'_> {
    DossierView { d, timeline: timeline(d), daily: daily(d, band), histogram: histogram(d) }
}

/// A node of a crew's network drawing.
#[derive(Serialize)]
struct NetNode {
    x: f64,
    y: f64,
    label: String,
    flagged: bool,
    monitor: bool,
}

#[derive(Serialize)]
struct NetEdge {
    x1: f64,
    y1: f64,
    x2: f64,
    y2: f64,
    label: String,
    strong: bool,
}

#[derive(Serialize)]
struct Net {
    width: f64,
    height: f64,
    nodes: Vec<NetNode>,
    edges: Vec<NetEdge>,
}

/// The members on a circle (a crew is small: a circle shows every link without a layout engine),
/// each link a line, strong ones thick.
fn network(p: &CrewPage) -> Net {
    let n = p.members.len().max(1) as f64;
    let radius = (40.0 + 12.0 * n).min(170.0);
    let (cx, cy) = (radius + 90.0, radius + 20.0);
    let monitors: std::collections::BTreeSet<&str> = p.monitoring.iter().map(|m| m.listener.as_str()).collect();
    let pos: Vec<(f64, f64)> = (0..p.members.len())
        .map(|i| {
            let a = std::f64::consts::TAU * i as f64 / n - std::f64::consts::FRAC_PI_2;
            (cx + radius * a.cos(), cy + radius * a.sin())
        })
        .collect();
    let at = |id: &str| p.members.iter().position(|m| m.operator_id == id).map(|i| pos[i]);
    let edges = p
        .links
        .iter()
        .filter_map(|l| {
            let ((x1, y1), (x2, y2)) = (at(&l.from)?, at(&l.to)?);
            Some(NetEdge {
                x1,
                y1,
                x2,
                y2,
                label: format!("{} – {}: {}", l.from, l.to, l.kinds),
                strong: l.strength >= 1.0,
            })
        })
        .collect();
    let nodes = p
        .members
        .iter()
        .zip(&pos)
        .map(|(m, (x, y))| NetNode {
            x: *x,
            y: *y,
            label: m.operator_id.clone(),
            flagged: m.flagged,
            monitor: monitors.contains(m.operator_id.as_str()),
        })
        .collect();
    Net { width: 2.0 * cx + 60.0, height: 2.0 * cy, nodes, edges }
}

/// Every member's shifts on one time axis from the crew's first local day: a row per member, so
/// shifts that start together line up.
fn crew_timeline(p: &CrewPage, tz: chrono_tz::Tz) -> Chart {
    let first = p.shifts.iter().map(|s| s.start_us).min().unwrap_or(0);
    let day0 = {
        let d = crate::frame::utc(first).with_timezone(&tz).date_naive();
        crate::frame::day_start(d, tz).timestamp_micros()
    };
    let last = p.shifts.iter().map(|s| s.end_us).max().unwrap_or(day0);
    let hours = (((last - day0) as f64 / 3.6e9) / 24.0).ceil().max(1.0) * 24.0;
    let (row, plot_w) = (16.0, 720.0);
    let sx = plot_w / hours;
    let rows: Vec<&str> = p.members.iter().map(|m| m.operator_id.as_str()).collect();
    let flagged: std::collections::BTreeSet<&str> =
        p.members.iter().filter(|m| m.flagged).map(|m| m.operator_id.as_str()).collect();
    let bars = p
        .shifts
        .iter()
        .filter_map(|s| {
            let r = rows.iter().position(|o| *o == s.operator_id)? as f64;
            let x = (s.start_us - day0) as f64 / 3.6e9;
            Some(Bar {
                x: LEFT + x * sx,
                y: TOP + r * row + 2.0,
                w: (((s.end_us - s.start_us) as f64 / 3.6e9) * sx).max(1.5),
                h: row - 4.0,
                label: format!("{}: {:.1} h talk", s.operator_id, s.talk_h),
                flagged: flagged.contains(s.operator_id.as_str()),
            })
        })
        .collect();
    let step = if hours > 96.0 { 24 } else { 12 };
    let xticks = (0..=hours as i64)
        .step_by(step)
        .map(|h| {
            let t = crate::frame::utc(day0 + h * 3_600_000_000).with_timezone(&tz);
            Tick {
                x: LEFT + h as f64 * sx,
                y: TOP + rows.len() as f64 * row + 14.0,
                label: t.format("%m-%d %H:00").to_string(),
            }
        })
        .collect();
    rows_chart(&rows, row, plot_w + 20.0, bars, xticks)
}

#[derive(Serialize)]
struct CrewView<'a> {
    p: &'a CrewPage,
    net: Net,
    timeline: Chart,
}

fn crew_view<'a>(p: &'a CrewPage, r: &Report) -> CrewView<'a> {
    let tz: chrono_tz::Tz = r.tz.parse().unwrap_or(chrono_tz::UTC);
    CrewView { p, net: network(p), timeline: crew_timeline(p, tz) }
}

/// Crew pages report.html shows (the rest are in dossiers.json and `report --crew`).
const MAX_CREW_PAGES: usize = 50;

/// The whole report: overview, crew pages and the dossiers of the `max_dossiers` highest-risk
/// operators (0: all; the rest are in dossiers.json and `report --operator`).
pub fn report_html(r: &Report, band: [f64; 2], max_dossiers: usize) -> Result<String> {
    let n = if max_dossiers == 0 { r.dossiers.len() } else { max_dossiers.min(r.dossiers.len()) };
    let views: Vec<DossierView> = r.dossiers[..n].iter().map(|d| view(d, band)).collect();
    let crews: Vec<CrewView> = r.crews.iter().take(MAX_CREW_PAGES).map(|p| crew_view(p, r)).collect();
    let total = r.dossiers.len();
    Ok(env().get_template("report.html")?.render(context! {
        r => Value::from(Serde(r)), views => Value::from(Serde(&views)), style => STYLE, single => false,
        shown => n, total => total, crews => Value::from(Serde(&crews)), in_report => true,
    })?)
}

/// One operator's dossier as a standalone HTML page.
pub fn dossier_html(r: &Report, d: &Dossier, band: [f64; 2]) -> Result<String> {
    let views = vec![view(d, band)];
    Ok(env().get_template("report.html")?.render(
        context! { r => Value::from(Serde(r)), views => Value::from(Serde(&views)), style => STYLE, single => true, crews => Vec::<i32>::new(), in_report => false },
    )?)
}

/// One crew's page as a standalone HTML page.
pub fn crew_html(r: &Report, p: &CrewPage) -> Result<String> {
    let v = crew_view(p, r);
    let tmpl = r#"{% import "crew.html" as cm %}<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>diversion-audit: crew {{ v.p.crew_id }}</title><style>{{ style|safe }}</style></head><body><h1>Traffic-diversion audit: crew {{ v.p.crew_id }}</h1><p class="muted">diversion-audit {{ r.version }} · times local to {{ r.tz }}</p>{{ cm.page(v) }}</body></html>"#;
    let mut e = env();
    e.add_template("crew_page.html", tmpl)?;
    Ok(e.get_template("crew_page.html")?
        .render(context! { r => Value::from(Serde(r)), v => Value::from(Serde(&v)), style => STYLE })?)
}

pub fn crew_md(r: &Report, p: &CrewPage) -> Result<String> {
    Ok(env().get_template("crew.md")?.render(context! { r => Value::from(Serde(r)), p => Value::from(Serde(p)) })?)
}

pub fn crew_json(p: &CrewPage) -> Result<String> {
    Ok(serde_json::to_string_pretty(p)? + "\n")
}

pub fn dossier_md(r: &Report, d: &Dossier) -> Result<String> {
    Ok(env().get_template("dossier.md")?.render(context! { r => Value::from(Serde(r)), d => Value::from(Serde(d)) })?)
}

pub fn dossier_json(d: &Dossier) -> Result<String> {
    Ok(serde_json::to_string_pretty(d)? + "\n")
}

/// A `cards` dossier (supplier, shop, SMS sub-account) as Markdown or HTML.
pub fn party(r: &super::parties::PartyReport, d: &super::parties::PartyDossier, html: bool) -> Result<String> {
    let name = if html { "party.html" } else { "party.md" };
    Ok(env().get_template(name)?.render(context! {
        r => Value::from(Serde(r)), d => Value::from(Serde(d)), style => STYLE, version => env!("CARGO_PKG_VERSION"),
    })?)
}
