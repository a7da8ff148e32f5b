//! Dependency cycles as a picture (`cluster-sim check --svg` for the transactional models): a
//! panel per cycle, its transactions on a circle, each edge an arrow labelled with its kind,
//! and under it the transactions and the sentence that proves each edge. Self-contained SVG.

use std::f64::consts::PI;
use std::fmt::Write;

use super::anomaly::Anomaly;

/// A cycle as drawn: its anomaly, each transaction's one-line text, and each edge's kind and
/// why (from transaction `i` to `i + 1`, the last back to the first).
#[derive(Debug, Clone, PartialEq)]
pub struct DrawnCycle {
    /// The anomaly the cycle is.
    pub anomaly: Anomaly,
    /// The transactions, as `process 3 txn [append x 1] (ok, ...)`.
    pub txns: Vec<String>,
    /// Each edge: its kind (`ww`, `wr`, `rw`, `rt`) and the sentence that proves it.
    pub edges: Vec<(String, String)>,
}

const WIDTH: f64 = 1200.0;
const NODE: f64 = 22.0;
const LINE: f64 = 16.0;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn colour(kind: &str) -> &'static str {
    match kind {
        "ww" => "#1e88e5",
        "wr" => "#43a047",
        "rw" => "#e53935",
        _ => "#8e24aa",
    }
}

/// Draws `cycles`, one panel each, top to bottom.
pub(crate) fn cycles_svg(cycles: &[DrawnCycle]) -> String {
    let mut body = String::new();
    let mut y = 10.0;
    for c in cycles {
        y = panel(&mut body, c, y) + 20.0;
    }
    if cycles.is_empty() {
        body.push_str(r#"<text x="10" y="30">no dependency cycle</text>"#);
        y = 50.0;
    }
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{y}" font-family="monospace" font-size="12">"#
    );
    svg.push_str("<title>dependency cycles</title><defs>");
    for k in ["ww", "wr", "rw", "rt"] {
        let _ = write!(
            svg,
            r#"<marker id="arrow-{k}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="{}"/></marker>"#,
            colour(k)
        );
    }
    svg.push_str("</defs>");
    svg.push_str(&body);
    svg.push_str("</svg>");
    svg
}

/// One cycle's panel from `top`; returns where it ends.
fn panel(out: &mut String, c: &DrawnCycle, top: f64) -> f64 {
    let n = c.txns.len();
    let _ = write!(
        out,
        r#"<text x="10" y="{}" font-size="14" font-weight="bold">{} ({})</text>"#,
        top + 16.0,
        c.anomaly,
        escape(c.anomaly.description())
    );
    // Room for the transactions around the ring, and no more.
    let ring = (40.0 + 30.0 * n as f64).min(220.0);
    let (cx, cy) = (WIDTH / 2.0, top + 40.0 + ring);
    let at = |i: usize| {
        let angle = -PI / 2.0 + 2.0 * PI * i as f64 / n as f64;
        (cx + ring * angle.cos(), cy + ring * angle.sin())
    };
    for (i, (kind, why)) in c.edges.iter().enumerate() {
        let ((x1, y1), (x2, y2)) = (at(i), at((i + 1) % n));
        let (dx, dy) = (x2 - x1, y2 - y1);
        let len = (dx * dx + dy * dy).sqrt().max(1.0);
        let (ux, uy) = (dx / len, dy / len);
        // Bend each arrow to the left of its direction, so the two arrows between a pair of
        // transactions (a cycle of two) don't lie on top of each other.
        let bend = 40.0;
        let (mx, my) = ((x1 + x2) / 2.0 - uy * bend, (y1 + y2) / 2.0 + ux * bend);
        let (sx, sy) = (x1 + ux * NODE, y1 + uy * NODE);
        let (ex, ey) = (x2 - ux * NODE, y2 - uy * NODE);
        let _ = write!(
            out,
            r#"<g><title>{}</title><path d="M {sx:.1} {sy:.1} Q {mx:.1} {my:.1} {ex:.1} {ey:.1}" fill="none" stroke="{c}" stroke-width="2" marker-end="url(#arrow-{kind})"/><text x="{:.1}" y="{:.1}" fill="{c}" text-anchor="middle">{kind}</text></g>"#,
            escape(why),
            (sx + 2.0 * mx + ex) / 4.0 - uy * 8.0,
            (sy + 2.0 * my + ey) / 4.0 + ux * 8.0 + 4.0,
            c = colour(kind),
        );
    }
    for (i, txn) in c.txns.iter().enumerate() {
        let (x, y) = at(i);
        let _ = write!(
            out,
            r##"<g><title>{}</title><circle cx="{x:.1}" cy="{y:.1}" r="{NODE}" fill="#fff8e1" stroke="#555"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" font-weight="bold">T{}</text></g>"##,
            escape(txn),
            y + 4.0,
            i + 1
        );
    }
    let mut y = cy + ring + 50.0;
    for (i, txn) in c.txns.iter().enumerate() {
        let _ = write!(
            out,
            r#"<text x="10" y="{y:.1}">T{} = {}</text>"#,
            i + 1,
            escape(txn)
        );
        y += LINE;
    }
    for (kind, why) in &c.edges {
        let _ = write!(
            out,
            r#"<text x="10" y="{y:.1}" fill="{}">{}</text>"#,
            colour(kind),
            escape(why)
        );
        y += LINE;
    }
    y
}
