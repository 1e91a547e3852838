//! Markdown for mail and wikis: the stamp, then each section as a table with its SQL.

use std::fmt::Write;

use super::run::Outcome;

pub fn render(outcome: &Outcome) -> String {
    let mut out = String::new();
    let report = &outcome.report;
    let _ = writeln!(out, "# {}\n", report.title);
    if let Some(description) = &report.description {
        let _ = writeln!(out, "{description}\n");
    }
    for (name, value) in &outcome.params {
        let _ = writeln!(out, "- 参数 {name}: {value}");
    }
    let _ = writeln!(out, "- 生成时间: {}", outcome.generated_local());
    let _ = writeln!(out, "- 数据版本: `{}`", outcome.pin());
    let _ = writeln!(out, "- 复现: `{}`\n", outcome.rerun_command());
    for (i, section) in outcome.sections.iter().enumerate() {
        let _ = writeln!(out, "## {}. {}\n", i + 1, section.title);
        if let Some(description) = &section.description {
            let _ = writeln!(out, "{description}\n");
        }
        let table = &section.table;
        if table.rows.is_empty() {
            let _ = writeln!(out, "（无数据）\n");
        } else if !section.show_table {
            let _ = writeln!(out, "（{} 行数据见 Excel 与 CSV。）\n", table.rows.len());
        } else {
            let header: Vec<String> = table.columns.iter().map(|c| cell(&c.label)).collect();
            let _ = writeln!(out, "| {} |", header.join(" | "));
            let rule: Vec<&str> = table
                .columns
                .iter()
                .map(|c| match c.format {
                    super::spec::CellFormat::Text => "---",
                    _ => "---:",
                })
                .collect();
            let _ = writeln!(out, "| {} |", rule.join(" | "));
            for row in &table.rows {
                let cells: Vec<String> = row
                    .iter()
                    .zip(&table.columns)
                    .map(|(value, column)| cell(&value.display(column.format)))
                    .collect();
                let _ = writeln!(out, "| {} |", cells.join(" | "));
            }
            let _ = writeln!(out);
        }
        let _ = writeln!(
            out,
            "<details><summary>SQL（读取 {}）</summary>\n\n```sql\n{}\n```\n\n</details>\n",
            section.tables.join(", "),
            section.sql.trim()
        );
    }
    out
}

/// A table cell: pipes escaped, line breaks flattened.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}
