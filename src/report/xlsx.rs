//! Excel: a cover sheet (title, parameters, generation time, table versions, how to
//! reproduce), one sheet per section with a bold frozen header and widths that fit
//! Chinese text, money and rates as real numbers with number formats, and a last
//! sheet with each section's SQL.

use std::path::Path;

use rust_xlsxwriter::{
    DocProperties, Format as XFormat, FormatAlign, Workbook, Worksheet, XlsxError,
};

use super::cells::{display_width, Cell, Table};
use super::run::Outcome;
use super::spec::{CellFormat, Chart};
use crate::{Error, Result};

pub fn write(outcome: &Outcome, path: &Path) -> Result<()> {
    let mut workbook = Workbook::new();
    let mut at = String::from("the cover sheet");
    build(outcome, &mut workbook, &mut at).map_err(|e| {
        Error::input(
            path.display(),
            format!(
                "report '{}': cannot write {at} of the Excel file: {e}",
                outcome.report.name
            ),
        )
    })?;
    workbook
        .save(path)
        .map_err(|e| Error::input(path.display(), format!("cannot save the Excel file: {e}")))
}

struct Styles {
    title: XFormat,
    header: XFormat,
    label: XFormat,
    wrap: XFormat,
    percent: XFormat,
    money: XFormat,
    decimal: XFormat,
    integer: XFormat,
    version: XFormat,
}

impl Styles {
    fn new() -> Self {
        Styles {
            title: XFormat::new().set_bold().set_font_size(16),
            header: XFormat::new()
                .set_bold()
                .set_background_color("#DDEBF7")
                .set_align(FormatAlign::Center)
                .set_text_wrap(),
            label: XFormat::new().set_bold(),
            wrap: XFormat::new().set_text_wrap().set_align(FormatAlign::Top),
            percent: XFormat::new().set_num_format("0.00%"),
            money: XFormat::new().set_num_format("#,##0.00"),
            decimal: XFormat::new().set_num_format("0.00"),
            integer: XFormat::new().set_num_format("0"),
            version: XFormat::new()
                .set_num_format("0")
                .set_align(FormatAlign::Left),
        }
    }

    fn number(&self, format: CellFormat) -> &XFormat {
        match format {
            CellFormat::Percent => &self.percent,
            CellFormat::Money => &self.money,
            CellFormat::Integer => &self.integer,
            CellFormat::Decimal | CellFormat::Text => &self.decimal,
        }
    }
}

/// Fills `workbook`; `at` names the sheet being written, for errors.
fn build(outcome: &Outcome, workbook: &mut Workbook, at: &mut String) -> Result<(), XlsxError> {
    let styles = Styles::new();
    workbook.set_properties(
        &DocProperties::new()
            .set_title(&outcome.report.title)
            .set_author("kpidb")
            .set_comment(format!("data versions {}", outcome.pin())),
    );
    cover(outcome, workbook.add_worksheet(), &styles)?;
    let mut names: Vec<String> = vec!["封面".into()];
    let mut section_sheets = Vec::new();
    for (i, section) in outcome.sections.iter().enumerate() {
        *at = format!("section {} ('{}')", i + 1, section.title);
        // A heat map's sheet is its matrix, as the HTML draws it; the rows follow
        // on a sheet of their own.
        let matrix = match &section.chart {
            Some(Chart::Heatmap { x, y, value }) => section.table.pivot(x, y, value),
            _ => None,
        };
        let name = sheet_name(i + 1, &section.title, &names);
        let sheet = workbook.add_worksheet();
        sheet.set_name(&name)?;
        names.push(name.clone());
        section_sheets.push(name);
        let title = &section.title;
        match &matrix {
            Some(matrix) => {
                table_sheet(outcome, title, matrix, sheet, &styles)?;
                let detail = sheet_name(i + 1, &format!("{title}（明细）"), &names);
                let sheet = workbook.add_worksheet();
                sheet.set_name(&detail)?;
                names.push(detail);
                table_sheet(outcome, title, &section.table, sheet, &styles)?;
            }
            None => table_sheet(outcome, title, &section.table, sheet, &styles)?,
        }
    }
    *at = "the SQL sheet".into();
    let sql = workbook.add_worksheet();
    sql.set_name("查询语句")?;
    for (col, label) in ["章节", "读取的表（版本）", "SQL"].iter().enumerate() {
        sql.write_string_with_format(0, col as u16, *label, &styles.header)?;
    }
    for (i, section) in outcome.sections.iter().enumerate() {
        let r = i as u32 + 1;
        sql.write_string_with_format(r, 0, &section_sheets[i], &styles.wrap)?;
        let tables: Vec<String> = section
            .tables
            .iter()
            .map(|t| match outcome.versions.get(t) {
                Some(v) => format!("{t} (v{v})"),
                None => t.clone(),
            })
            .collect();
        sql.write_string_with_format(r, 1, tables.join("\n"), &styles.wrap)?;
        sql.write_string_with_format(r, 2, section.sql.trim(), &styles.wrap)?;
    }
    sql.set_column_width(0, 28)?;
    sql.set_column_width(1, 26)?;
    sql.set_column_width(2, 100)?;
    sql.set_freeze_panes(1, 0)?;
    Ok(())
}

/// One table on `sheet`: a bold frozen header with a filter, widths that fit Chinese
/// text, numbers as numbers in their formats, printed landscape one page wide.
fn table_sheet(
    outcome: &Outcome,
    title: &str,
    table: &Table,
    sheet: &mut Worksheet,
    styles: &Styles,
) -> Result<(), XlsxError> {
    if table.rows.len() >= 1_048_576 || table.columns.len() >= 16_384 {
        return Err(XlsxError::RowColumnLimitError);
    }
    let mut widths: Vec<usize> = table
        .columns
        .iter()
        .map(|c| display_width(&c.label).clamp(6, 40))
        .collect();
    for (col, column) in table.columns.iter().enumerate() {
        sheet.write_string_with_format(0, col as u16, &column.label, &styles.header)?;
    }
    for (r, row) in table.rows.iter().enumerate() {
        let r = r as u32 + 1;
        for (col, (cell, column)) in row.iter().zip(&table.columns).enumerate() {
            let c = col as u16;
            match (cell, column.format) {
                (Cell::Null, _) => {}
                (Cell::Text(s), _) => {
                    sheet.write_string(r, c, s)?;
                }
                (Cell::Bool(b), _) => {
                    sheet.write_boolean(r, c, *b)?;
                }
                (cell, format) => match cell.number() {
                    Some(n) => {
                        sheet.write_number_with_format(r, c, n, styles.number(format))?;
                    }
                    None => {
                        sheet.write_string(r, c, cell.text())?;
                    }
                },
            }
            widths[col] = widths[col].max(display_width(&cell.display(column.format)).min(60));
        }
    }
    for (col, width) in widths.iter().enumerate() {
        sheet.set_column_width(col as u16, *width as f64 + 2.0)?;
    }
    sheet.set_freeze_panes(1, 0)?;
    if !table.rows.is_empty() && !table.columns.is_empty() {
        sheet.autofilter(
            0,
            0,
            table.rows.len() as u32,
            table.columns.len() as u16 - 1,
        )?;
    }
    sheet.set_repeat_rows(0, 0)?;
    sheet.set_landscape();
    sheet.set_print_fit_to_pages(1, 0);
    // '&' starts a header control code; '&&' is a literal one.
    sheet.set_header(format!(
        "&L{}&R{}",
        outcome.report.title.replace('&', "&&"),
        title.replace('&', "&&")
    ));
    Ok(())
}

fn cover(outcome: &Outcome, sheet: &mut Worksheet, styles: &Styles) -> Result<(), XlsxError> {
    sheet.set_name("封面")?;
    sheet.write_string_with_format(0, 0, &outcome.report.title, &styles.title)?;
    sheet.set_row_height(0, 28)?;
    let mut rows: Vec<(String, String)> = Vec::new();
    if let Some(description) = &outcome.report.description {
        rows.push(("说明".into(), description.clone()));
    }
    rows.push(("报告".into(), outcome.report.name.clone()));
    rows.extend(outcome.param_rows());
    for note in &outcome.notes {
        rows.push(("注意".into(), note.clone()));
    }
    rows.push(("生成时间".into(), outcome.generated_local()));
    rows.push(("数据版本".into(), outcome.pin()));
    rows.push(("复现命令".into(), outcome.rerun_command()));
    let mut r = 2;
    for (label, value) in rows {
        sheet.write_string_with_format(r, 0, &label, &styles.label)?;
        sheet.write_string_with_format(r, 1, &value, &styles.wrap)?;
        r += 1;
    }
    r += 1;
    sheet.write_string_with_format(r, 0, "数据表", &styles.header)?;
    sheet.write_string_with_format(r, 1, "Delta 版本", &styles.header)?;
    for (table, version) in &outcome.versions {
        r += 1;
        sheet.write_string(r, 0, table)?;
        sheet.write_number_with_format(r, 1, *version as f64, &styles.version)?;
    }
    r += 2;
    sheet.write_string_with_format(r, 0, "章节", &styles.header)?;
    sheet.write_string_with_format(r, 1, "行数", &styles.header)?;
    for (i, section) in outcome.sections.iter().enumerate() {
        r += 1;
        sheet.write_string(r, 0, format!("{}. {}", i + 1, section.title))?;
        sheet.write_number_with_format(r, 1, section.table.rows.len() as f64, &styles.version)?;
    }
    sheet.set_column_width(0, 36)?;
    sheet.set_column_width(1, 90)?;
    Ok(())
}

/// A sheet name Excel accepts: at most 31 characters, none of `[]:*?/\`, unique.
fn sheet_name(n: usize, title: &str, taken: &[String]) -> String {
    let clean: String = title
        .chars()
        .map(|c| if "[]:*?/\\".contains(c) { '_' } else { c })
        .collect();
    // Excel refuses a name that starts or ends with an apostrophe.
    let clean = clean.trim_matches('\'');
    let mut name: String = format!("{n}.{clean}").chars().take(31).collect();
    if taken.iter().any(|t| t.eq_ignore_ascii_case(&name)) {
        name = format!("{n}").chars().take(31).collect();
    }
    name
}
