//! The interactive shell: statements end at ';' and may span lines; backslash
//! commands describe the warehouse. An error is printed and the shell carries on.

use std::time::Instant;

use datafusion::arrow::datatypes::DataType;
use rustyline::error::ReadlineError;
use rustyline::DefaultEditor;

use super::print::{Output, OutputFormat};
use crate::model::TABLES;
use crate::{Engine, Error, Result};

const HELP: &str = "\
  SQL;          run a statement (it may span lines; it ends at ';')
  \\dt           list tables
  \\d TABLE      columns of a table with their types
  \\df           kpidb's functions
  \\timing       show how long each statement takes (toggle)
  \\q            quit (also Ctrl-D)";

pub async fn run(engine: Engine) -> Result<()> {
    let mut editor = DefaultEditor::new()
        .map_err(|e| Error::usage(format!("cannot start the line editor: {e}")))?;
    let history =
        std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".kpidb_history"));
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    println!(
        "kpidb {} — warehouse {} ({}). Type \\? for help, \\q to quit.",
        env!("CARGO_PKG_VERSION"),
        engine.warehouse().root().display(),
        match engine.as_of() {
            crate::AsOf::Latest => "latest versions".to_string(),
            pin => format!("as of {pin}"),
        }
    );
    let mut timing = false;
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
            match command(&engine, trimmed, &mut timing).await {
                Ok(true) => break,
                Ok(false) => {}
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
        if let Err(e) = execute(&engine, &sql).await {
            eprintln!("error: {}", e.to_string().trim_end());
        }
        if timing {
            println!("Time: {:.3}s", started.elapsed().as_secs_f64());
        }
    }
    if let Some(path) = &history {
        let _ = editor.save_history(path);
    }
    Ok(())
}

async fn execute(engine: &Engine, sql: &str) -> Result<()> {
    for statement in engine.parse(sql)? {
        let frame = engine.run(statement).await?;
        let schema = frame.schema().inner().clone();
        let batches = frame.collect().await?;
        let mut out = Output::open(None, OutputFormat::Table)?;
        out.write(schema, &batches)?;
        out.finish()?;
    }
    Ok(())
}

/// Runs a backslash command; `Ok(true)` means quit.
async fn command(engine: &Engine, line: &str, timing: &mut bool) -> Result<bool> {
    let mut words = line.split_whitespace();
    match (words.next().unwrap_or(""), words.next()) {
        ("\\q", _) => return Ok(true),
        ("\\?" | "\\h" | "\\help", _) => println!("{HELP}"),
        ("\\timing", _) => {
            *timing = !*timing;
            println!("Timing is {}.", if *timing { "on" } else { "off" });
        }
        ("\\dt", _) => {
            println!("{:<16} {:>8}  description", "table", "version");
            for def in TABLES {
                let version = engine
                    .versions()
                    .get(def.name)
                    .copied()
                    .flatten()
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "-".into());
                println!("{:<16} {:>8}  {}", def.name, version, def.description);
            }
        }
        ("\\d", Some(table)) => {
            let provider = engine.context().table_provider(table).await.map_err(|_| {
                Error::usage(format!("no table named '{table}'; \\dt lists the tables"))
            })?;
            println!("{:<20} {:<16} nullable", "column", "type");
            for field in provider.schema().fields() {
                println!(
                    "{:<20} {:<16} {}",
                    field.name(),
                    type_name(field.data_type()),
                    if field.is_nullable() { "yes" } else { "no" }
                );
            }
        }
        ("\\d", None) => println!("usage: \\d TABLE"),
        ("\\df", _) => print_functions(),
        (other, _) => println!("unknown command {other}; \\? lists the commands"),
    }
    Ok(false)
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
pub fn print_functions() {
    for (name, kind, doc) in crate::functions::documentation() {
        println!(
            "{name} ({kind})\n  {}\n  syntax:  {}",
            doc.description, doc.syntax_example
        );
        if let Some(example) = &doc.sql_example {
            println!(
                "  example: {}",
                example.trim().replace('\n', "\n           ")
            );
        }
        println!();
    }
}
