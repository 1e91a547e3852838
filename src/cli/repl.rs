//! The interactive shell: statements end at ';' and may span lines; backslash
//! commands describe the warehouse and choose how results print. An error is printed
//! and the shell carries on. Tab completes table, column and function names.

use std::path::PathBuf;
use std::time::Instant;

use datafusion::arrow::datatypes::DataType;
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, Helper};

use super::print::{Output, OutputFormat};
use crate::model::TABLES;
use crate::{Engine, Error, Result};

const HELP: &str = "\
  SQL;          run a statement (it may span lines; it ends at ';')
  \\dt           list tables
  \\d TABLE      columns of a table with their types
  \\df           kpidb's functions
  \\x            expanded rows: one line per column (toggle)
  \\format NAME  print results as table, csv or json
  \\o FILE       send results to FILE; \\o alone: back to the screen
  \\timing       show how long each statement takes (toggle)
  \\q            quit (also Ctrl-D)
  Tab           complete a table, column or function name";

/// How results print, as the backslash commands set it.
#[derive(Debug)]
struct Settings {
    format: OutputFormat,
    expanded: bool,
    timing: bool,
    /// `\o FILE`: results go here, appended statement after statement.
    output: Option<PathBuf>,
}

pub async fn run(engine: Engine) -> Result<()> {
    let mut editor: Editor<Names, DefaultHistory> =
        Editor::new().map_err(|e| Error::usage(format!("cannot start the line editor: {e}")))?;
    editor.set_helper(Some(Names::of(&engine).await));
    let history = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".kpidb_history"));
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    outln!(
        "kpidb {} — warehouse {} ({}). Type \\? for help, \\q to quit.",
        env!("CARGO_PKG_VERSION"),
        engine.warehouse().location(),
        match engine.as_of() {
            crate::AsOf::Latest => "latest versions".to_string(),
            pin => format!("as of {pin}"),
        }
    );
    let mut settings = Settings {
        format: OutputFormat::Table,
        expanded: false,
        timing: false,
        output: None,
    };
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() {
            "kpidb> "
        } else {
            "   ..> "
        };
        let line = match editor.readline(prompt) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => {
                buffer.clear();
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(Error::usage(format!("cannot read input: {e}"))),
        };
        let trimmed = line.trim();
        if buffer.is_empty() && trimmed.starts_with('\\') {
            let _ = editor.add_history_entry(trimmed);
            match command(&engine, trimmed, &mut settings).await {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) if e.is_broken_pipe() => return Err(e),
                Err(e) => eprintln!("error: {}", e.to_string().trim_end()),
            }
            continue;
        }
        if trimmed.is_empty() && buffer.is_empty() {
            continue;
        }
        buffer.push_str(&line);
        buffer.push('\n');
        if !trimmed.ends_with(';') {
            continue;
        }
        let sql = std::mem::take(&mut buffer);
        let _ = editor.add_history_entry(sql.trim());
        let started = Instant::now();
        match execute(&engine, &sql, &settings).await {
            Err(e) if e.is_broken_pipe() => return Err(e),
            Err(e) => eprintln!("error: {}", e.to_string().trim_end()),
            Ok(()) => {}
        }
        if settings.timing {
            outln!("Time: {:.3}s", started.elapsed().as_secs_f64());
        }
    }
    if let Some(path) = &history {
        let _ = editor.save_history(path);
    }
    Ok(())
}

async fn execute(engine: &Engine, sql: &str, settings: &Settings) -> Result<()> {
    for statement in engine.parse(sql)? {
        let asked = crate::years::asked(&statement);
        let frame = engine.run(statement).await?;
        let schema = frame.schema().inner().clone();
        let batches = frame.collect().await?;
        let format = match (settings.format, settings.expanded) {
            (OutputFormat::Table, true) => OutputFormat::Expanded,
            (format, _) => format,
        };
        let mut out = match &settings.output {
            Some(path) => Output::append(path, format)?,
            None => Output::open(None, format)?,
        };
        out.write(schema, &batches)?;
        out.finish()?;
        if batches.iter().all(|b| b.num_rows() == 0) {
            super::notice_empty(engine, &asked).await;
        }
    }
    Ok(())
}

/// Runs a backslash command; `Ok(true)` means quit.
async fn command(engine: &Engine, line: &str, settings: &mut Settings) -> Result<bool> {
    let mut words = line.split_whitespace();
    match (words.next().unwrap_or(""), words.next()) {
        ("\\q", _) => return Ok(true),
        ("\\?" | "\\h" | "\\help", _) => outln!("{HELP}"),
        ("\\timing", _) => {
            settings.timing = !settings.timing;
            outln!("Timing is {}.", on_off(settings.timing));
        }
        ("\\x", _) => {
            settings.expanded = !settings.expanded;
            outln!("Expanded display is {}.", on_off(settings.expanded));
        }
        ("\\format" | "\\pset", Some(word)) => {
            let name = match (word, words.next()) {
                ("format", Some(name)) => name,
                (name, None) if line.starts_with("\\format") => name,
                _ => return Err(Error::usage("usage: \\format table|csv|json")),
            };
            settings.format = match name {
                "table" | "aligned" => OutputFormat::Table,
                "csv" => OutputFormat::Csv,
                "json" => OutputFormat::Json,
                other => {
                    return Err(Error::usage(format!(
                        "\\format {other}: use table, csv or json (\\x for expanded rows)"
                    )))
                }
            };
            outln!("Output format is {name}.");
        }
        ("\\format" | "\\pset", None) => outln!("usage: \\format table|csv|json"),
        ("\\o", Some(file)) => {
            let path = PathBuf::from(file);
            std::fs::File::create(&path).map_err(|e| Error::io(&path, e))?;
            outln!("Results go to {} until \\o.", path.display());
            settings.output = Some(path);
        }
        ("\\o", None) => {
            settings.output = None;
            outln!("Results go to the screen.");
        }
        ("\\dt", _) => {
            outln!("{:<16} {:>8}  description", "table", "version");
            for def in TABLES {
                let version = engine
                    .versions()
                    .get(def.name)
                    .copied()
                    .flatten()
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "-".into());
                outln!("{:<16} {:>8}  {}", def.name, version, def.description);
            }
        }
        ("\\d", Some(table)) => {
            let provider = engine.context().table_provider(table).await.map_err(|_| {
                Error::usage(format!("no table named '{table}'; \\dt lists the tables"))
            })?;
            outln!("{:<20} {:<16} nullable", "column", "type");
            for field in provider.schema().fields() {
                outln!(
                    "{:<20} {:<16} {}",
                    field.name(),
                    type_name(field.data_type()),
                    if field.is_nullable() { "yes" } else { "no" }
                );
            }
        }
        ("\\d", None) => outln!("usage: \\d TABLE"),
        ("\\df", _) => print_functions()?,
        (other, _) => outln!("unknown command {other}; \\? lists the commands"),
    }
    Ok(false)
}

fn on_off(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "off"
    }
}

fn type_name(t: &DataType) -> String {
    match t {
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => "text".into(),
        DataType::Int32 => "integer".into(),
        DataType::Int64 => "bigint".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Decimal128(p, s) => format!("decimal({p},{s})"),
        other => other.to_string(),
    }
}

/// `\df`: each kpidb function with its description, syntax and example.
pub fn print_functions() -> Result<()> {
    for (name, kind, doc) in crate::functions::documentation() {
        outln!(
            "{name} ({kind})\n  {}\n  syntax:  {}",
            doc.description,
            doc.syntax_example
        );
        if let Some(example) = &doc.sql_example {
            outln!(
                "  example: {}",
                example.trim().replace('\n', "\n           ")
            );
        }
        outln!();
    }
    Ok(())
}

/// What Tab completes: the warehouse's tables and their columns, kpidb's functions
/// and DataFusion's, and SQL's keywords.
struct Names {
    names: Vec<String>,
}

impl Helper for Names {}
impl Highlighter for Names {}
impl Validator for Names {}
impl Hinter for Names {
    type Hint = String;
}

impl Names {
    async fn of(engine: &Engine) -> Self {
        let mut names: Vec<String> = Vec::new();
        for def in TABLES {
            names.push(def.name.to_string());
            if let Ok(provider) = engine.context().table_provider(def.name).await {
                names.extend(provider.schema().fields().iter().map(|f| f.name().clone()));
            }
        }
        let state = engine.context().state();
        names.extend(state.scalar_functions().keys().cloned());
        names.extend(state.aggregate_functions().keys().cloned());
        names.extend(state.window_functions().keys().cloned());
        names.extend(state.table_functions().keys().cloned());
        names.extend(KEYWORDS.iter().map(|k| k.to_string()));
        Names::new(names)
    }

    fn new(mut names: Vec<String>) -> Self {
        names.sort();
        names.dedup();
        Names { names }
    }

    /// The word ending at `pos` and the names it begins (case-insensitive; keywords
    /// keep the case typed).
    fn candidates(&self, line: &str, pos: usize) -> (usize, Vec<String>) {
        let start = line[..pos]
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_alphanumeric() || *c == '_')
            .last()
            .map(|(i, _)| i)
            .unwrap_or(pos);
        let word = &line[start..pos];
        if word.is_empty() {
            return (pos, Vec::new());
        }
        let lower = word.to_lowercase();
        let upper = word.chars().all(|c| !c.is_lowercase());
        let found = self
            .names
            .iter()
            .filter(|n| n.to_lowercase().starts_with(&lower))
            .map(|n| match KEYWORDS.contains(&n.as_str()) {
                true if !upper => n.to_lowercase(),
                _ => n.clone(),
            })
            .collect();
        (start, found)
    }
}

impl Completer for Names {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (start, names) = self.candidates(line, pos);
        let pairs = names
            .into_iter()
            .map(|n| Pair {
                display: n.clone(),
                replacement: n,
            })
            .collect();
        Ok((start, pairs))
    }
}

const KEYWORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP",
    "BY",
    "ORDER",
    "HAVING",
    "LIMIT",
    "JOIN",
    "LEFT",
    "INNER",
    "ON",
    "USING",
    "AS",
    "AND",
    "OR",
    "NOT",
    "IN",
    "IS",
    "NULL",
    "DISTINCT",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "WITH",
    "UNION",
    "ALL",
    "DESC",
    "ASC",
    "OVER",
    "PARTITION",
    "EXPLAIN",
    "CAST",
    "BETWEEN",
    "LIKE",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tab_completes_the_word_under_the_cursor() {
        let names = Names::new(
            [
                "dept_scores",
                "dept_ranking",
                "departments",
                "dept_code",
                "SELECT",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        );
        let line = "SELECT dept_c FROM dep";
        assert_eq!(
            names.candidates(line, 13),
            (7, vec!["dept_code".to_string()])
        );
        let (start, found) = names.candidates(line, line.len());
        assert_eq!(start, 19);
        assert_eq!(
            found,
            ["departments", "dept_code", "dept_ranking", "dept_scores"]
        );
        assert_eq!(names.candidates("sel", 3), (0, vec!["select".to_string()]));
        assert_eq!(names.candidates("SEL", 3), (0, vec!["SELECT".to_string()]));
        assert_eq!(names.candidates("x ", 2), (2, vec![]));
    }
}
