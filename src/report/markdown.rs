//! Markdown for mail and wikis: the stamp, then each section as a table with its SQL.

use std::fmt::Write;

use super::run::Outcome;

pub fn render(outcome: &Outcome) -> String {
    let mut out = String::new();
    let report = &outcome.report;
    let _ = writeln!(out, "# {}\n", text(&report.title));
    if let Some(description) = &report.description {
        let _ = writeln!(out, "{}\n", text(description));
    }
    for (label, value) in outcome.param_rows() {
        let _ = writeln!(out, "- {}: {}", text(&label), text(&value));
    }
    for note in &outcome.notes {
        let _ = writeln!(out, "- 注意: {}", text(note));
    }
    let _ = writeln!(out, "- 生成时间: {}", outcome.generated_local());
    let _ = writeln!(out, "- 数据版本: `{}`", outcome.pin());
    let _ = writeln!(out, "- 复现: `{}`\n", outcome.rerun_command());
    for (i, section) in outcome.sections.iter().enumerate() {
        let _ = writeln!(out, "## {}. {}\n", i + 1, text(&section.title));
        if let Some(description) = &section.description {
            let _ = writeln!(out, "{}\n", text(description));
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

/// Text as Markdown shows it literally: no HTML, emphasis or code from the data.
fn text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '#' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// A table cell: escaped, pipes escaped, line breaks flattened.
fn cell(value: &str) -> String {
    text(value).replace('|', "\\|").replace(['\n', '\r'], " ")
}
