//! Rendering: HTML (self-contained, no network: inline CSS, inline SVG charts, no scripts), Markdown
//! and JSON, through minijinja templates (auto-escaping on for HTML, so an operator id or caller ID
//! such as `<script>` is shown as text). Chart geometry is computed here; the templates only place it.

use super::{Dossier, Report};
use anyhow::Result;
use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment, Value, context};
use serde::Serialize;

const REPORT_HTML: &str = include_str!("../../templates/report.html.j2");
const DOSSIER_HTML: &str = include_str!("../../templates/dossier.html.j2");
const DOSSIER_MD: &str = include_str!("../../templates/dossier.md.j2");
const STYLE: &str = include_str!("../../templates/style.css");

fn env() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|name| if name.ends_with(".html") { AutoEscape::Html } else { AutoEscape::None });
    // Markdown table cells: a `|` or a line break from the input must not break the table.
    env.add_filter("md", |s: String| s.replace('|', "\\|").replace(['\n', '\r'], " "));
    env.add_template("report.html", REPORT_HTML).expect("report template");
    env.add_template("dossier.html", DOSSIER_HTML).expect("dossier template");
    env.add_template("dossier.md", DOSSIER_MD).expect("markdown template");
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
    let yticks = days
        .iter()
        .enumerate()
        .map(|(i, day)| Tick { x: LEFT - 6.0, y: TOP + i as f64 * row + row / 2.0 + 4.0, label: day.to_string() })
        .collect();
    Chart {
        width: LEFT + plot_w + 10.0,
        height: TOP + days.len() as f64 * row + 24.0,
        bars,
        xticks,
        yticks,
        band: None,
    }
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

/// The whole report: overview and the dossiers of the `max_dossiers` highest-risk operators (0: all;
/// the rest are in dossiers.json and `report --operator`).
pub fn report_html(r: &Report, band: [f64; 2], max_dossiers: usize) -> Result<String> {
    let n = if max_dossiers == 0 { r.dossiers.len() } else { max_dossiers.min(r.dossiers.len()) };
    let views: Vec<DossierView> = r.dossiers[..n].iter().map(|d| view(d, band)).collect();
    let total = r.dossiers.len();
    Ok(env().get_template("report.html")?.render(context! {
        r => Value::from(Serde(r)), views => Value::from(Serde(&views)), style => STYLE, single => false,
        shown => n, total => total,
    })?)
}

/// One operator's dossier as a standalone HTML page.
pub fn dossier_html(r: &Report, d: &Dossier, band: [f64; 2]) -> Result<String> {
    let views = vec![view(d, band)];
    Ok(env().get_template("report.html")?.render(
        context! { r => Value::from(Serde(r)), views => Value::from(Serde(&views)), style => STYLE, single => true },
    )?)
}

pub fn dossier_md(r: &Report, d: &Dossier) -> Result<String> {
    Ok(env().get_template("dossier.md")?.render(context! { r => Value::from(Serde(r)), d => Value::from(Serde(d)) })?)
}

pub fn dossier_json(d: &Dossier) -> Result<String> {
    Ok(serde_json::to_string_pretty(d)? + "\n")
}
