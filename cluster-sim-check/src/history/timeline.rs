//! A history as a picture: one lane per process (and one for the nemesis), each operation a bar
//! from invocation to completion, coloured by outcome, its text in a tooltip. Self-contained
//! SVG: it opens in any browser, from the test's artifacts, with nothing loaded.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{complete, Op, OpType, Process};

const LANE: f64 = 18.0;
const LEFT: f64 = 90.0;
const WIDTH: f64 = 1400.0;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Renders `history` as an SVG timeline.
pub fn timeline_svg(history: &[Op]) -> String {
    let done = complete(history);
    let end = history.iter().map(|o| o.time).max().unwrap_or(0).max(1);
    let x = |t: u64| LEFT + (t as f64 / end as f64) * (WIDTH - LEFT - 10.0);
    let mut lanes: BTreeMap<Process, usize> = BTreeMap::new();
    for op in &done {
        let n = lanes.len();
        lanes.entry(op.process.clone()).or_insert(n);
    }
    let nemesis_lane = lanes.len();
    let height = (nemesis_lane as f64 + 2.0) * LANE + 30.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="monospace" font-size="11">"#
    );
    svg.push_str("<title>history timeline</title>");
    for (p, lane) in &lanes {
        let y = 20.0 + *lane as f64 * LANE;
        let _ = write!(
            svg,
            r##"<text x="4" y="{}">process {}</text><line x1="{LEFT}" x2="{WIDTH}" y1="{}" y2="{}" stroke="#eee"/>"##,
            y + 12.0,
            escape(&p.to_string()),
            y + 16.0,
            y + 16.0
        );
    }
    for op in &done {
        let lane = lanes[&op.process];
        let y = 20.0 + lane as f64 * LANE + 2.0;
        let x0 = x(op.start);
        let x1 = x(op.end.unwrap_or(end)).max(x0 + 2.0);
        let colour = match op.outcome {
            OpType::Ok => "#4caf50",
            OpType::Fail => "#e53935",
            _ => "#fbc02d",
        };
        let _ = write!(
            svg,
            r#"<rect x="{x0:.1}" y="{y:.1}" width="{:.1}" height="{}" fill="{colour}" opacity="0.8"><title>{}</title></rect>"#,
            x1 - x0,
            LANE - 5.0,
            escape(&op.to_string())
        );
    }
    // Nemesis: an invoke opens a span, the next info or ok of the same action closes it.
    let y = 20.0 + nemesis_lane as f64 * LANE;
    let _ = write!(svg, r#"<text x="4" y="{}">nemesis</text>"#, y + 12.0);
    let mut open: Vec<&Op> = Vec::new();
    for op in history
        .iter()
        .filter(|o| matches!(&o.process, Process::Named(n) if n == "nemesis"))
    {
        if op.kind == OpType::Invoke {
            open.push(op);
            continue;
        }
        let start = open
            .iter()
            .position(|o| o.f == op.f)
            .map(|i| open.remove(i));
        let t0 = start.map_or(op.time, |s| s.time);
        let x0 = x(t0);
        let _ = write!(
            svg,
            r##"<rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="{}" fill="#7e57c2" opacity="0.6"><title>{} {} ({:.3}s..{:.3}s)</title></rect>"##,
            y + 2.0,
            (x(op.time) - x0).max(2.0),
            LANE - 5.0,
            escape(&op.f),
            escape(&op.value.to_string()),
            t0 as f64 / 1e9,
            op.time as f64 / 1e9
        );
    }
    for o in open {
        let x0 = x(o.time);
        let _ = write!(
            svg,
            r##"<rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="{}" fill="#7e57c2" opacity="0.3"><title>{} {} (from {:.3}s, never ended)</title></rect>"##,
            y + 2.0,
            (x(end) - x0).max(2.0),
            LANE - 5.0,
            escape(&o.f),
            escape(&o.value.to_string()),
            o.time as f64 / 1e9
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{LEFT}" y="{}">0s</text><text x="{}" y="{}" text-anchor="end">{:.3}s</text></svg>"#,
        height - 6.0,
        WIDTH - 10.0,
        height - 6.0,
        end as f64 / 1e9
    );
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_bars_and_nemesis_spans() {
        let h = crate::history::synthetic::register_history(3, 40, 2, 4);
        let mut h = h;
        let t = h.last().unwrap().time;
        h.push(Op {
            process: Process::Named("nemesis".into()),
            kind: OpType::Invoke,
            f: "partition".into(),
            key: None,
            value: "halves".into(),
            time: t,
            error: None,
        });
        let svg = timeline_svg(&h);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(
            svg.matches("process ").count() - 40,
            4,
            "4 lanes and 40 op tooltips"
        );
        assert!(svg.contains("partition &quot;halves&quot; (from"), "{svg}");
    }
}
