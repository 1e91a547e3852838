//! HTML: one self-contained page (inline CSS and SVG, no script, no fetches) that
//! reads in Chinese on screen and prints cleanly: the stamp, a contents list, and per
//! section its chart, its table and the SQL it ran.

use std::fmt::Write;

use super::charts::{self, escape};
use super::run::Outcome;
use super::spec::CellFormat;

const STYLE: &str = r#"
:root { --ink: #1d2733; --muted: #5b6775; --rule: #d9dee4; --head: #eef3f8; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1180px; padding: 24px 32px 64px; color: var(--ink);
  font: 14px/1.6 "Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", "SimSun", sans-serif; }
h1 { font-size: 26px; margin: 0 0 6px; letter-spacing: 1px; }
h2 { font-size: 19px; margin: 36px 0 8px; padding-bottom: 4px; border-bottom: 2px solid #2b5797; }
.lede { color: var(--muted); margin: 0 0 16px; }
table { border-collapse: collapse; margin: 8px 0 12px; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid var(--rule); padding: 3px 8px; vertical-align: top; }
th { background: var(--head); font-weight: 600; white-space: nowrap; }
td.num { text-align: right; white-space: nowrap; }
tbody tr:nth-child(even) td { background: #fafbfc; }
table.stamp td:first-child { color: var(--muted); white-space: nowrap; }
code, pre { font-family: "JetBrains Mono", "Consolas", monospace; font-size: 12px; }
pre { background: #f6f8fa; padding: 10px; overflow-x: auto; border: 1px solid var(--rule); }
.chart { max-width: 100%; height: auto; display: block; margin: 8px 0; }
nav ol { margin: 4px 0 0; padding-left: 22px; }
details summary { cursor: pointer; color: var(--muted); }
.empty { color: var(--muted); font-style: italic; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
@media print {
  body { max-width: none; padding: 0; font-size: 11px; }
  nav, details { display: none; }
  section { break-inside: auto; }
  h2 { break-after: avoid; }
  .chart, tr { break-inside: avoid; }
  thead { display: table-header-group; }
  @page { size: A4 landscape; margin: 12mm; }
}
"#;

pub fn render(outcome: &Outcome) -> String {
    let report = &outcome.report;
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"kpidb {}\">\n\
         <meta name=\"kpidb-data-versions\" content=\"{}\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        env!("CARGO_PKG_VERSION"),
        escape(&outcome.pin()),
        escape(&report.title)
    );
    let _ = writeln!(out, "<header><h1>{}</h1>", escape(&report.title));
    if let Some(description) = &report.description {
        let _ = writeln!(out, "<p class=\"lede\">{}</p>", escape(description));
    }
    out.push_str("<table class=\"stamp\">\n");
    for (label, value) in outcome.param_rows() {
        stamp_row(&mut out, &label, &value);
    }
    for note in &outcome.notes {
        stamp_row(&mut out, "注意", note);
    }
    stamp_row(&mut out, "生成时间", &outcome.generated_local());
    let versions: Vec<String> = outcome
        .versions
        .iter()
        .map(|(t, v)| format!("{t} v{v}"))
        .collect();
    stamp_row(&mut out, "数据版本", &versions.join("，"));
    let _ = writeln!(
        out,
        "<tr><td>复现命令</td><td><code>{}</code></td></tr>\n</table></header>",
        escape(&outcome.rerun_command())
    );
    out.push_str("<nav><strong>目录</strong><ol>\n");
    for (i, section) in outcome.sections.iter().enumerate() {
        let _ = writeln!(
            out,
            "<li><a href=\"#s{}\">{}</a></li>",
            i + 1,
            escape(&section.title)
        );
    }
    out.push_str("</ol></nav>\n");
    for (i, section) in outcome.sections.iter().enumerate() {
        let _ = writeln!(
            out,
            "<section id=\"s{0}\">\n<h2>{0}. {1}</h2>",
            i + 1,
            escape(&section.title)
        );
        if let Some(description) = &section.description {
            let _ = writeln!(out, "<p class=\"lede\">{}</p>", escape(description));
        }
        let table = &section.table;
        if table.rows.is_empty() {
            out.push_str("<p class=\"empty\">（无数据）</p>\n");
        } else {
            if let Some(chart) = &section.chart {
                out.push_str("<figure style=\"margin:0\">");
                out.push_str(&charts::render(chart, table));
                out.push_str("</figure>\n");
            }
            if !section.show_table {
                let _ = writeln!(
                    out,
                    "<p class=\"lede\">{} 行数据见 Excel 与 CSV。</p>",
                    table.rows.len()
                );
            } else {
                out.push_str("<table>\n<thead><tr>");
                for column in &table.columns {
                    let _ = write!(out, "<th>{}</th>", escape(&column.label));
                }
                out.push_str("</tr></thead>\n<tbody>\n");
                for row in &table.rows {
                    out.push_str("<tr>");
                    for (cell, column) in row.iter().zip(&table.columns) {
                        let class = if column.format == CellFormat::Text {
                            ""
                        } else {
                            " class=\"num\""
                        };
                        let _ = write!(
                            out,
                            "<td{class}>{}</td>",
                            escape(&cell.display(column.format))
                        );
                    }
                    out.push_str("</tr>\n");
                }
                out.push_str("</tbody>\n</table>\n");
            }
        }
        let _ = writeln!(
            out,
            "<details><summary>SQL（读取 {}）</summary><pre>{}</pre></details>\n</section>",
            escape(&section.tables.join(", ")),
            escape(section.sql.trim())
        );
    }
    let _ = writeln!(
        out,
        "<footer>kpidb {} · 报告 {} · 数据版本 {}</footer>\n</body>\n</html>",
        env!("CARGO_PKG_VERSION"),
        escape(&report.name),
        escape(&outcome.pin())
    );
    out
}

fn stamp_row(out: &mut String, label: &str, value: &str) {
    let _ = writeln!(
        out,
        "<tr><td>{}</td><td>{}</td></tr>",
        escape(label),
        escape(value)
    );
}
