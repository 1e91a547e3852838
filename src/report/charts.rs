//! Charts as inline SVG, drawn from a section's cells, so the HTML report needs no
//! script and no network: horizontal bars (rankings), lines (score trends) and a
//! heat map (department × indicator). Each mark carries its value as a tooltip.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::cells::{display_width, Cell, Table};
use super::spec::{CellFormat, Chart};

const FONT: &str =
    "'Noto Sans CJK SC','Source Han Sans SC','PingFang SC','Microsoft YaHei','SimHei',sans-serif";
const PALETTE: [&str; 10] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
    "#7f7f7f", "#bcbd22",
];

/// The SVG of `chart` over `table` (its columns were checked when the report ran).
pub fn render(chart: &Chart, table: &Table) -> String {
    match chart {
        Chart::Bar {
            label,
            value,
            color,
        } => bars(table, label, value, color.as_deref()),
        Chart::Line { x, y, series } => lines(table, x, y, series),
        Chart::Heatmap { x, y, value } => heatmap(table, x, y, value),
    }
}

pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Pixel width of text at 12px (CJK characters are twice as wide as Latin ones).
fn text_px(text: &str) -> f64 {
    display_width(text) as f64 * 6.6
}

fn column<'a>(table: &'a Table, name: &str) -> (usize, &'a super::cells::Column) {
    let i = table
        .column(name)
        .expect("chart columns are checked when the report runs");
    (i, &table.columns[i])
}

/// An axis from `lo` to `hi` in round steps.
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    ticks_of(lo, hi, CellFormat::Decimal)
}

/// [`ticks`] for values shown in `format`: counts get whole steps only, so every
/// tick's label is the value it marks (never 2.5 printed as 2).
fn ticks_of(lo: f64, hi: f64, format: CellFormat) -> Vec<f64> {
    let span = (hi - lo).max(f64::EPSILON);
    let raw = span / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let whole = format == CellFormat::Integer;
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .filter(|s| !whole || (*s >= 1.0 && s.fract() == 0.0))
        .find(|s| span / s <= 6.0)
        .unwrap_or((magnitude * 10.0).max(1.0));
    let mut ticks = Vec::new();
    let mut t = (lo / step).ceil() * step;
    // At most a dozen: a step lost in rounding (huge values) must not loop forever.
    while t <= hi + step * 1e-9 && ticks.len() < 12 {
        ticks.push(t);
        t += step;
    }
    ticks
}

/// The value range drawn: from zero, unless every value sits high above zero
/// (scores of 70–95), where a floor at a round number keeps differences visible.
fn domain(values: &[f64]) -> (f64, f64) {
    let max = values.iter().cloned().fold(f64::MIN, f64::max);
    let min = values.iter().cloned().fold(f64::MAX, f64::min);
    if values.is_empty() {
        return (0.0, 1.0);
    }
    let lo = if min > 0.0 && (max - min) < max * 0.5 {
        let t = ticks(0.0, max);
        let step = t.get(1).copied().unwrap_or(1.0) / 2.0;
        ((min - (max - min) * 0.1) / step).floor() * step
    } else {
        min.min(0.0)
    };
    // Bars grow from zero: an axis of only negative values still ends at zero.
    let hi = if lo < 0.0 { max.max(0.0) } else { max };
    let hi = if hi <= lo { lo + 1.0 } else { hi };
    (lo, hi)
}

/// The range bars are drawn over: from zero (or the lowest negative value) to the
/// highest value (or zero).
fn from_zero(values: &[f64]) -> (f64, f64) {
    let lo = values.iter().cloned().fold(0.0, f64::min);
    let hi = values.iter().cloned().fold(0.0, f64::max);
    (lo, if hi <= lo { lo + 1.0 } else { hi })
}

fn short(value: f64, format: CellFormat) -> String {
    match format {
        CellFormat::Percent => format!("{:.0}%", value * 100.0),
        CellFormat::Integer => format!("{value:.0}"),
        _ if value.abs() >= 1000.0 => format!("{value:.0}"),
        _ => {
            let s = format!("{value:.1}");
            s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
        }
    }
}

fn grade_color(category: &str) -> Option<&'static str> {
    Some(match category {
        "优秀" | "优" | "excellent" => "#2e7d32",
        "良好" | "良" | "good" => "#1f77b4",
        "一般" | "中" | "fair" => "#ef8a17",
        "较差" | "差" | "poor" => "#c62828",
        _ => return None,
    })
}

fn open_svg(out: &mut String, width: f64, height: f64, title: &str) {
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" viewBox=\"0 0 {width:.0} {height:.0}\" \
         width=\"{width:.0}\" height=\"{height:.0}\" role=\"img\" font-family=\"{FONT}\" font-size=\"12\">\
         <title>{}</title>",
        escape(title)
    );
}

fn bars(table: &Table, label: &str, value: &str, color: Option<&str>) -> String {
    let (li, _) = column(table, label);
    let (vi, vcol) = column(table, value);
    let ci = color.map(|c| column(table, c).0);
    let rows: Vec<(String, f64, Option<String>)> = table
        .rows
        .iter()
        .filter_map(|r| {
            let v = r[vi].number()?;
            Some((r[li].text(), v, ci.map(|c| r[c].text())))
        })
        .collect();
    let label_w = rows
        .iter()
        .map(|r| text_px(&r.0))
        .fold(60.0, f64::max)
        .min(260.0)
        + 12.0;
    let plot_w = 620.0;
    let bar_h = 16.0;
    let gap = 4.0;
    let top = 28.0;
    let height = top + rows.len() as f64 * (bar_h + gap) + 36.0;
    let width = label_w + plot_w + 70.0;
    // Bars start at zero, so their lengths compare as their values do.
    let (lo, hi) = from_zero(&rows.iter().map(|r| r.1).collect::<Vec<_>>());
    let x = |v: f64| label_w + (v - lo) / (hi - lo) * plot_w;
    let mut out = String::new();
    open_svg(
        &mut out,
        width,
        height,
        &format!("{} — {}", label, vcol.label),
    );
    // Axis and grid.
    for t in ticks_of(lo, hi, vcol.format) {
        let px = x(t);
        let _ = write!(
            out,
            "<line x1=\"{px:.1}\" y1=\"{top}\" x2=\"{px:.1}\" y2=\"{:.1}\" stroke=\"#e3e3e3\"/>\
             <text x=\"{px:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#555\">{}</text>",
            height - 30.0,
            height - 16.0,
            short(t, vcol.format)
        );
    }
    // Legend for colour categories, in order of first appearance.
    let mut categories: Vec<String> = Vec::new();
    for r in &rows {
        if let Some(c) = &r.2 {
            if !categories.contains(c) {
                categories.push(c.clone());
            }
        }
    }
    let colour = |c: &Option<String>| -> String {
        match c {
            Some(c) => grade_color(c).map(str::to_string).unwrap_or_else(|| {
                let i = categories.iter().position(|k| k == c).unwrap_or(0);
                PALETTE[i % PALETTE.len()].to_string()
            }),
            None => PALETTE[0].to_string(),
        }
    };
    let colour_of = |c: &Option<String>, v: f64| -> String {
        if c.is_none() && v < 0.0 {
            "#c62828".to_string() // a fall, without a colour column
        } else {
            colour(c)
        }
    };
    let mut lx = label_w;
    for c in &categories {
        let fill = colour(&Some(c.clone()));
        let _ = write!(
            out,
            "<rect x=\"{lx:.1}\" y=\"6\" width=\"12\" height=\"12\" fill=\"{fill}\"/>\
             <text x=\"{:.1}\" y=\"16\">{}</text>",
            lx + 16.0,
            escape(c)
        );
        lx += 28.0 + text_px(c);
    }
    for (i, (name, v, c)) in rows.iter().enumerate() {
        let y = top + i as f64 * (bar_h + gap);
        let fill = colour_of(c, *v);
        // Bars grow from zero when the axis crosses it (negative changes go left).
        let base = x(if lo < 0.0 { 0.0 } else { lo });
        let (left, w) = (base.min(x(*v)), (x(*v) - base).abs().max(1.0));
        let _ = write!(
            out,
            "<g class=\"bar\"><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\
             <rect x=\"{left:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{bar_h}\" fill=\"{fill}\"><title>{}: {}</title></rect>\
             <text x=\"{:.1}\" y=\"{:.1}\" fill=\"#333\">{}</text></g>",
            label_w - 6.0,
            y + bar_h - 4.0,
            escape(name),
            escape(name),
            escape(&Cell::Float(*v).display(vcol.format)),
            left + w + 4.0,
            y + bar_h - 4.0,
            escape(&Cell::Float(*v).display(vcol.format))
        );
    }
    out.push_str("</svg>");
    out
}

fn lines(table: &Table, x: &str, y: &str, series: &str) -> String {
    let (xi, xcol) = column(table, x);
    let (yi, ycol) = column(table, y);
    let (si, _) = column(table, series);
    // Series in order of first appearance; x values sorted numerically when numeric.
    let mut order: Vec<String> = Vec::new();
    let mut points: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for r in &table.rows {
        let (Some(xv), Some(yv)) = (r[xi].number(), r[yi].number()) else {
            continue;
        };
        let s = r[si].text();
        if !order.contains(&s) {
            order.push(s.clone());
        }
        points.entry(s).or_default().push((xv, yv));
    }
    let all: Vec<(f64, f64)> = points.values().flatten().copied().collect();
    let xs: Vec<f64> = all.iter().map(|p| p.0).collect();
    let (x_lo, x_hi) = (
        xs.iter().cloned().fold(f64::MAX, f64::min),
        xs.iter().cloned().fold(f64::MIN, f64::max),
    );
    let (x_lo, x_hi) = if all.is_empty() {
        (0.0, 1.0)
    } else if x_hi <= x_lo {
        (x_lo - 1.0, x_hi + 1.0)
    } else {
        (x_lo, x_hi)
    };
    let (y_lo, y_hi) = domain(&all.iter().map(|p| p.1).collect::<Vec<_>>());
    let legend_w = order.iter().map(|s| text_px(s)).fold(80.0, f64::max) + 30.0;
    let (left, top, plot_w, plot_h) = (50.0, 16.0, 640.0, 300.0);
    let width = left + plot_w + 20.0 + legend_w;
    let height = top + plot_h + 40.0;
    let px = |v: f64| left + (v - x_lo) / (x_hi - x_lo) * plot_w;
    let py = |v: f64| top + plot_h - (v - y_lo) / (y_hi - y_lo) * plot_h;
    let mut out = String::new();
    open_svg(
        &mut out,
        width,
        height,
        &format!("{} — {}", ycol.label, xcol.label),
    );
    for t in ticks(y_lo, y_hi) {
        let _ = write!(
            out,
            "<line x1=\"{left}\" y1=\"{0:.1}\" x2=\"{1:.1}\" y2=\"{0:.1}\" stroke=\"#e3e3e3\"/>\
             <text x=\"{2:.1}\" y=\"{3:.1}\" text-anchor=\"end\" fill=\"#555\">{4}</text>",
            py(t),
            left + plot_w,
            left - 6.0,
            py(t) + 4.0,
            short(t, ycol.format)
        );
    }
    let mut xticks: Vec<f64> = xs.clone();
    xticks.sort_by(|a, b| a.total_cmp(b));
    xticks.dedup();
    if xticks.len() > 12 {
        xticks = ticks(x_lo, x_hi);
    }
    for t in xticks {
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#555\">{}</text>",
            px(t),
            top + plot_h + 18.0,
            short(t, xcol.format)
        );
    }
    let _ = write!(
        out,
        "<line x1=\"{left}\" y1=\"{0:.1}\" x2=\"{1:.1}\" y2=\"{0:.1}\" stroke=\"#888\"/>",
        top + plot_h,
        left + plot_w
    );
    for (i, name) in order.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let mut pts = points[name].clone();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let path: Vec<String> = pts
            .iter()
            .map(|(a, b)| format!("{:.1},{:.1}", px(*a), py(*b)))
            .collect();
        let _ = write!(
            out,
            "<g class=\"series\"><polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"><title>{}</title></polyline>",
            path.join(" "),
            escape(name)
        );
        for (a, b) in &pts {
            let _ = write!(
                out,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{colour}\"><title>{} {}: {}</title></circle>",
                px(*a),
                py(*b),
                escape(name),
                short(*a, xcol.format),
                escape(&Cell::Float(*b).display(ycol.format))
            );
        }
        out.push_str("</g>");
        let ly = top + 10.0 + i as f64 * 18.0;
        let lx = left + plot_w + 20.0;
        let _ = write!(
            out,
            "<line x1=\"{lx:.1}\" y1=\"{ly:.1}\" x2=\"{:.1}\" y2=\"{ly:.1}\" stroke=\"{colour}\" stroke-width=\"3\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            lx + 18.0,
            lx + 24.0,
            ly + 4.0,
            escape(name)
        );
    }
    out.push_str("</svg>");
    out
}

fn heatmap(table: &Table, x: &str, y: &str, value: &str) -> String {
    let (xi, _) = column(table, x);
    let (yi, _) = column(table, y);
    let (vi, vcol) = column(table, value);
    let mut xs: Vec<String> = Vec::new();
    let mut ys: Vec<String> = Vec::new();
    let mut cells: BTreeMap<(usize, usize), f64> = BTreeMap::new();
    for r in &table.rows {
        let (xv, yv) = (r[xi].text(), r[yi].text());
        if !xs.contains(&xv) {
            xs.push(xv.clone());
        }
        if !ys.contains(&yv) {
            ys.push(yv.clone());
        }
        if let Some(v) = r[vi].number() {
            let key = (
                xs.iter().position(|k| *k == xv).unwrap_or(0),
                ys.iter().position(|k| *k == yv).unwrap_or(0),
            );
            cells.insert(key, v);
        }
    }
    let values: Vec<f64> = cells.values().copied().collect();
    let lo = values.iter().cloned().fold(f64::MAX, f64::min);
    let hi = values.iter().cloned().fold(f64::MIN, f64::max);
    // One value (or all equal): shade it mid-scale and show it at both ends of the key.
    let (lo, hi, span) = if values.is_empty() {
        (0.0, 1.0, 1.0)
    } else if hi <= lo {
        (lo, hi, 0.0)
    } else {
        (lo, hi, hi - lo)
    };
    let label_w = ys
        .iter()
        .map(|s| text_px(s))
        .fold(60.0, f64::max)
        .min(260.0)
        + 10.0;
    let cell_w = xs
        .iter()
        .map(|s| text_px(s) + 8.0)
        .fold(52.0, f64::max)
        .min(110.0);
    let cell_h = 16.0;
    let top = 34.0;
    let width = label_w + xs.len() as f64 * cell_w + 20.0;
    let height = top + ys.len() as f64 * cell_h + 40.0;
    let mut out = String::new();
    open_svg(
        &mut out,
        width.max(360.0),
        height,
        &format!("{} × {}", y, x),
    );
    for (i, name) in xs.iter().enumerate() {
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"11\">{}</text>",
            label_w + (i as f64 + 0.5) * cell_w,
            top - 8.0,
            escape(name)
        );
    }
    for (j, name) in ys.iter().enumerate() {
        let y = top + j as f64 * cell_h;
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"11\">{}</text>",
            label_w - 6.0,
            y + cell_h - 4.0,
            escape(name)
        );
        for (i, column) in xs.iter().enumerate() {
            let x = label_w + i as f64 * cell_w;
            match cells.get(&(i, j)) {
                Some(v) => {
                    let t = if span > 0.0 { (v - lo) / span } else { 0.5 };
                    let fill = shade(t);
                    let ink = if !(0.25..=0.8).contains(&t) {
                        "#fff"
                    } else {
                        "#222"
                    };
                    let shown = Cell::Float(*v).display(vcol.format);
                    let _ = write!(
                        out,
                        "<g class=\"cell\"><rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{cell_w:.1}\" height=\"{cell_h}\" fill=\"{fill}\" stroke=\"#fff\">\
                         <title>{} / {}: {}</title></rect>\
                         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"10\" fill=\"{ink}\">{}</text></g>",
                        escape(name),
                        escape(column),
                        escape(&shown),
                        x + cell_w / 2.0,
                        y + cell_h - 4.0,
                        escape(&shown)
                    );
                }
                None => {
                    let _ = write!(
                        out,
                        "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{cell_w:.1}\" height=\"{cell_h}\" fill=\"#f4f4f4\" stroke=\"#fff\"/>"
                    );
                }
            }
        }
    }
    // Colour key.
    let ky = top + ys.len() as f64 * cell_h + 14.0;
    for k in 0..=10 {
        let t = k as f64 / 10.0;
        let _ = write!(
            out,
            "<rect x=\"{:.1}\" y=\"{ky:.1}\" width=\"20\" height=\"10\" fill=\"{}\"/>",
            label_w + k as f64 * 20.0,
            shade(t)
        );
    }
    let _ = write!(
        out,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"11\">{}</text>\
         <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\">{}</text>",
        label_w - 6.0,
        ky + 9.0,
        escape(&Cell::Float(lo).display(vcol.format)),
        label_w + 11.0 * 20.0 + 6.0,
        ky + 9.0,
        escape(&Cell::Float(hi).display(vcol.format))
    );
    out.push_str("</svg>");
    out
}

/// Low values dark red, middle pale yellow, high green.
fn shade(t: f64) -> String {
    let t = t.clamp(0.0, 1.0);
    let stops = [
        (0.0, (183, 28, 28)),
        (0.5, (255, 235, 156)),
        (1.0, (27, 122, 62)),
    ];
    let (a, b) = if t <= 0.5 {
        (stops[0], stops[1])
    } else {
        (stops[1], stops[2])
    };
    let f = (t - a.0) / (b.0 - a.0);
    let mix = |p: u8, q: u8| (p as f64 + (q as f64 - p as f64) * f).round() as u8;
    format!(
        "#{:02x}{:02x}{:02x}",
        mix(a.1 .0, b.1 .0),
        mix(a.1 .1, b.1 .1),
        mix(a.1 .2, b.1 .2)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rows: Vec<Vec<Cell>>) -> Table {
        let column = |name: &str, format| super::super::cells::Column {
            name: name.into(),
            label: name.into(),
            format,
        };
        Table {
            columns: vec![
                column("name", CellFormat::Text),
                column("level", CellFormat::Text),
                column("value", CellFormat::Decimal),
            ],
            rows,
        }
    }

    #[test]
    fn odd_results_draw_without_failing() {
        let text = |s: &str| Cell::Text(s.into());
        let falls = table(vec![
            vec![text("a"), text("x"), Cell::Float(-5.0)],
            vec![text("b"), text("x"), Cell::Float(-7.0)],
        ]);
        let bar = Chart::Bar {
            label: "name".into(),
            value: "value".into(),
            color: None,
        };
        let svg = render(&bar, &falls);
        assert_eq!(svg.matches("class=\"bar\"").count(), 2);
        assert!(svg.contains("#c62828"), "falls are red");
        let one = table(vec![vec![text("a"), text("x"), Cell::Float(0.85)]]);
        let heat = Chart::Heatmap {
            x: "level".into(),
            y: "name".into(),
            value: "value".into(),
        };
        assert!(render(&heat, &one).contains("class=\"cell\""));
        let huge = table(vec![
            vec![text("a"), text("x"), Cell::Float(1e16)],
            vec![text("b"), text("x"), Cell::Null],
        ]);
        assert_eq!(
            render(&bar, &huge).matches("class=\"bar\"").count(),
            1,
            "NULL is not drawn"
        );
        let none = table(vec![]);
        for chart in [
            bar,
            heat,
            Chart::Line {
                x: "level".into(),
                y: "value".into(),
                series: "name".into(),
            },
        ] {
            assert!(render(&chart, &none).ends_with("</svg>"));
        }
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(ticks(0.0, 100.0), vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        // Counts: whole steps, each label the value it marks.
        assert_eq!(ticks(0.0, 13.0), vec![0.0, 2.5, 5.0, 7.5, 10.0, 12.5]);
        let counts = ticks_of(0.0, 13.0, CellFormat::Integer);
        assert_eq!(counts, vec![0.0, 5.0, 10.0]);
        assert_eq!(
            ticks_of(0.0, 3.0, CellFormat::Integer),
            vec![0.0, 1.0, 2.0, 3.0]
        );
        assert_eq!(from_zero(&[72.5, 95.0]), (0.0, 95.0));
        assert_eq!(from_zero(&[-3.0, 5.0]), (-3.0, 5.0));
        assert_eq!(ticks(70.0, 95.0), vec![70.0, 75.0, 80.0, 85.0, 90.0, 95.0]);
    }

    #[test]
    fn scores_get_a_floor_and_escapes_hold() {
        let (lo, hi) = domain(&[72.5, 94.0]);
        assert!(lo > 50.0 && lo < 72.5 && hi == 94.0, "{lo} {hi}");
        assert_eq!(domain(&[0.2, 5.0]).0, 0.0);
        assert_eq!(escape("<a&'b'>"), "&lt;a&amp;&#39;b&#39;&gt;");
        assert_eq!(shade(0.0), "#b71c1c");
    }
}
