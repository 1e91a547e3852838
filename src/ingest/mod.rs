//! Ingest: files into one table, as one pipeline.
//!
//! read → file rules → stored checks → write → commit → rollups
//!
//! - **read** (`source`, `csv`, `parquet`, `xlsx`): the inputs are streamed in
//!   pieces (blocks of CSV records, Parquet batches, slices of a sheet), each typed
//!   straight into the table's Arrow types (`cells`).
//! - **file rules** (`rules`) and the **row checks against the warehouse** (`refs`:
//!   codes that must exist) run on every core, a piece per task, in file order.
//! - **keys** (`keys`) are fixed-width numbers in a bitmap: repeated keys and keys
//!   the warehouse already holds are found without keeping the rows.
//! - **write**: while no problem has been found, each piece streams into the
//!   table's directory as Parquet (not yet visible to anyone).
//! - **stored checks** over the whole input (`stored`) run once it has been read;
//!   the rows behind a repeated or stored key are found by a second reading.
//! - **commit** (`storage::Staged`): under the warehouse's commit lock, exactly on
//!   the version checked against; if a table the checks read has moved, everything
//!   is checked again against the new versions first. Problems anywhere: the
//!   written files are removed and nothing is committed.
//! - **rollups** are brought up to date under the same lock.
//!
//! Memory stays bounded whatever the file size: pieces in flight, Parquet row groups
//! being encoded, and the key bitmap (about a bit per row for dense keys).

mod cells;
mod csv;
mod keys;
mod parquet;
mod refs;
mod rules;
mod source;
mod stored;
pub mod validate;
mod xlsx;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::record_batch::RecordBatch;
use futures::{Stream, StreamExt};
use indicatif::{ProgressBar, ProgressStyle};

use crate::model::{table_or_err, TableDef};
use crate::storage::{AsOf, Staged, StagedWrite, Warehouse, WriteMode};
use crate::{Engine, Error, Result};
pub use cells::Chunk;
use keys::{KeyCodec, KeyTracker, Locator};
use refs::Refs;
use source::{Input, Meta, Opened, Piece};
use stored::Gathered;
use validate::{Problem, Problems};

/// How often an ingest re-checks and retries when other commits keep landing.
const MAX_ATTEMPTS: usize = 10;

#[derive(Debug, Clone)]
pub struct IngestRequest<'a> {
    pub table: &'a str,
    /// Files or directories, read as one input and committed as one version.
    pub files: &'a [PathBuf],
    pub mode: WriteMode,
    /// The XLSX sheet to read; the first one when `None`.
    pub sheet: Option<&'a str>,
    /// Draw a progress bar on standard error.
    pub progress: bool,
    /// Check everything, against the warehouse too, and write nothing.
    pub check_only: bool,
    /// Refuse columns the table does not have instead of ignoring them.
    pub strict: bool,
}

#[derive(Debug, Clone)]
pub struct IngestSummary {
    pub table: String,
    pub rows: usize,
    pub years: Vec<i32>,
    /// The version committed, or the version checked against with `--check`.
    pub version: u64,
    pub mode: WriteMode,
    pub check_only: bool,
    /// Stored rows replaced per year (`--mode replace-year`), or in all (`None`,
    /// `--mode replace`).
    pub replaced: BTreeMap<Option<i32>, u64>,
    /// Columns of the input that the table does not have, ignored.
    pub ignored: Vec<String>,
    pub elapsed: Duration,
}

impl std::fmt::Display for IngestSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let years = match self.years.as_slice() {
            [] => String::new(),
            [y] => format!(" for {y}"),
            [first, .., last] => format!(" for {first}–{last}"),
        };
        let took = format!("took {:.1} s", self.elapsed.as_secs_f64());
        if self.check_only {
            return write!(
                f,
                "{}: {} rows{years} pass every check against version {}; nothing was written (--check); {took}",
                self.table, self.rows, self.version
            );
        }
        let verb = match self.mode {
            WriteMode::Append => "appended",
            WriteMode::ReplaceYear => "replaced year(s) with",
            WriteMode::Replace => "replaced the table with",
        };
        write!(
            f,
            "{}: {verb} {} rows{years}; table is now at version {}",
            self.table, self.rows, self.version
        )?;
        if self.mode != WriteMode::Append {
            let replaced: Vec<String> = self
                .replaced
                .iter()
                .map(|(year, rows)| match year {
                    Some(year) => format!("{rows} of {year}"),
                    None => rows.to_string(),
                })
                .collect();
            write!(f, "; stored rows replaced: {}", replaced.join(", "))?;
        }
        write!(f, "; {took}")
    }
}

/// Checks the request's files against every rule and, when they pass, commits them.
pub async fn ingest(warehouse: &Warehouse, request: IngestRequest<'_>) -> Result<IngestSummary> {
    let started = Instant::now();
    let def = table_or_err(request.table)?;
    if request.mode == WriteMode::ReplaceYear && !def.partitioned() {
        return Err(Error::usage(format!(
            "--mode replace-year needs a table with a year column; {} has none",
            def.name
        )));
    }
    if request.files.is_empty() {
        return Err(Error::usage(
            "name at least one file or directory to ingest",
        ));
    }
    let inputs = source::resolve(request.files, request.sheet)?;
    let label = match request.files {
        [one] => one.display().to_string(),
        many => format!("{} inputs ({})", many.len(), many[0].display()),
    };
    let bar = Progress::new(request.progress, inputs.iter().map(|i| i.size).sum());
    // The checks read the tables themselves, never the rollups.
    let mut engine = Engine::open_raw(warehouse.clone(), AsOf::Latest).await?;
    let mut staged: Option<Staged> = None;
    let mut lock: Option<crate::storage::CommitLock> = None;
    let mut note = None;
    for _ in 0..MAX_ATTEMPTS {
        let refs = Arc::new(Refs::load(&engine, def, request.mode).await?);
        let codec = KeyCodec::new(def, |c| refs.foreign(def, c))?;
        let ctx = Arc::new(Ctx {
            def,
            refs: Arc::clone(&refs),
            codec,
            sheet: request.sheet.map(str::to_string),
            strict: request.strict,
        });
        let writer = match staged.is_none() && !request.check_only {
            true => Some(StagedWrite::open(warehouse, def).await?),
            false => None,
        };
        bar.start_pass();
        let checked = check(
            &engine,
            &ctx,
            &inputs,
            &label,
            request.mode,
            writer,
            &bar,
            note.take(),
        )
        .await;
        let checked = match checked {
            Ok(checked) => checked,
            Err(e) => {
                abandon(&mut staged, &bar).await;
                if let Some(lock) = lock.take() {
                    lock.release().await;
                }
                return Err(e);
            }
        };
        let years = checked.gathered.years();
        let version = refs.versions.get(def.name).copied().unwrap_or(0);
        let summary = |version, replaced| IngestSummary {
            table: def.name.to_string(),
            rows: checked.gathered.rows,
            years: years.clone(),
            version,
            mode: request.mode,
            check_only: request.check_only,
            replaced,
            ignored: checked.ignored.clone(),
            elapsed: started.elapsed(),
        };
        if request.check_only {
            bar.finish();
            return Ok(summary(version, BTreeMap::new()));
        }
        if let Some(written) = checked.written {
            bar.phase("writing");
            staged = Some(written.finish().await?);
        }
        let ready = staged.as_ref().expect("files written before the commit");
        if lock.is_none() {
            bar.phase("waiting for other ingests to commit");
            lock = Some(warehouse.lock_commits().await?);
        }
        // Under the lock: has any table these checks read moved since?
        let latest = Engine::open_raw(warehouse.clone(), AsOf::Latest).await?;
        let moved = moved_tables(def, &refs, &latest);
        if !moved.is_empty() {
            note = Some(format!(
                "checked again against commits that landed while this ingest ran ({})",
                moved.join(", ")
            ));
            bar.phase("checking again against newer commits");
            engine = latest;
            continue;
        }
        bar.phase("committing");
        let source = inputs
            .iter()
            .map(|i| i.name.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let committed = ready
            .commit(warehouse, def, version, request.mode, &years, &source)
            .await;
        let committed = match committed {
            Ok(committed) => committed,
            Err(e) => {
                abandon(&mut staged, &bar).await;
                if let Some(lock) = lock.take() {
                    lock.release().await;
                }
                return Err(e);
            }
        };
        match committed {
            Some(committed) => {
                bar.phase("updating rollups");
                // The commit stands whatever happens here: a rollup left behind is
                // never read (the table functions read the raw tables) until the
                // next ingest rebuilds it.
                if let Err(e) =
                    crate::rollup::after_commit(warehouse, def.name, committed.version, &years)
                        .await
                {
                    log::warn!(
                        "{}: rollups not updated ({e}); run `kpidb rollups --rebuild`",
                        def.name
                    );
                }
                if let Some(lock) = lock.take() {
                    lock.release().await;
                }
                bar.finish();
                return Ok(summary(committed.version, committed.replaced));
            }
            // A writer outside kpidb committed between our look and our commit.
            None => {
                note = Some("checked again after a commit outside kpidb".to_string());
                engine = Engine::open_raw(warehouse.clone(), AsOf::Latest).await?;
            }
        }
    }
    abandon(&mut staged, &bar).await;
    Err(Error::usage(format!(
        "{}: gave up after {MAX_ATTEMPTS} attempts: the table kept changing while this ingest checked it; nothing was written",
        def.name
    )))
}

/// Removes the files written for a commit that will not happen.
async fn abandon(staged: &mut Option<Staged>, bar: &Progress) {
    if let Some(staged) = staged.take() {
        staged.discard().await;
    }
    bar.finish();
}

/// The tables `def`'s checks read, and the table itself.
fn depends_on(def: &TableDef) -> Vec<&'static str> {
    let mut tables = vec![def.name];
    for rule in def.stored_rules {
        tables.extend(rule.reads());
    }
    tables.sort_unstable();
    tables.dedup();
    tables
}

fn moved_tables(def: &TableDef, refs: &Refs, latest: &Engine) -> Vec<String> {
    let now = latest.versions();
    depends_on(def)
        .into_iter()
        .filter(|t| refs.versions.get(*t).copied() != now.get(*t).copied().flatten())
        .map(|t| {
            format!(
                "{t} version {}",
                now.get(t).copied().flatten().unwrap_or_default()
            )
        })
        .collect()
}

/// What every task of one check shares.
struct Ctx {
    def: &'static TableDef,
    refs: Arc<Refs>,
    codec: KeyCodec,
    sheet: Option<String>,
    strict: bool,
}

/// One piece typed and checked.
struct Decoded {
    meta: Arc<Meta>,
    chunk: Chunk,
    problems: Vec<Problem>,
    ids: Vec<Option<Vec<u32>>>,
    bytes: u64,
}

/// An input that passed every check.
struct Checked {
    gathered: Gathered,
    written: Option<StagedWrite>,
    ignored: Vec<String>,
}

/// Reads and checks every input once (twice when keys repeat); writes while no
/// problem has been found.
#[allow(clippy::too_many_arguments)]
async fn check(
    engine: &Engine,
    ctx: &Arc<Ctx>,
    inputs: &[Input],
    label: &str,
    mode: WriteMode,
    mut writer: Option<StagedWrite>,
    bar: &Progress,
    note: Option<String>,
) -> Result<Checked> {
    let def = ctx.def;
    let mut problems = Problems::new(label, def);
    if let Some(note) = note {
        problems.set_note(note);
    }
    bar.phase("reading and checking");
    let (opened, ignored) = match open_all(ctx, inputs, &mut problems) {
        Ok(opened) => opened,
        Err(e) => return fail(writer, Err(e)).await,
    };
    if !problems.is_empty() {
        // Header problems end the check at once.
        return fail(writer, Err(problems.into_error())).await;
    }
    let first = opened.first().map(|o| o.meta.file.clone());
    let mut tracker = KeyTracker::new(def, ctx.codec.clone());
    let mut gathered = Gathered::default();
    let mut stream = Box::pin(decoded(Arc::clone(ctx), opened));
    while let Some(piece) = stream.next().await {
        let piece = match piece {
            Ok(piece) => piece,
            Err(e) => return fail(writer, Err(e)).await,
        };
        problems.extend(piece.problems);
        tracker.add(&piece.chunk.batch, piece.ids);
        gathered.add(def, &ctx.refs, &piece.meta.file, &piece.chunk);
        if problems.is_empty() {
            if let Some(w) = writer.as_mut() {
                let batch =
                    RecordBatch::try_new(def.schema(), piece.chunk.batch.columns().to_vec())?;
                if let Err(e) = w.write(&batch).await {
                    return fail(writer, Err(e)).await;
                }
            }
        }
        bar.advance(piece.bytes, gathered.rows);
    }
    if gathered.rows == 0 {
        if let Some(file) = &first {
            problems.add(file.problem(
                1,
                "",
                "",
                "the file has a header but no data rows; there is nothing to ingest",
            ));
        }
    }
    bar.phase("checking against the warehouse");
    let stored = stored::check(
        engine,
        def,
        &ctx.refs,
        &tracker,
        &mut gathered,
        mode,
        &mut problems,
    )
    .await;
    let stored = match stored {
        Ok(stored) => stored,
        Err(e) => return fail(writer, Err(e)).await,
    };
    if !tracker.repeated.is_empty() || !stored.is_empty() {
        bar.phase("finding the rows of repeated keys");
        let (opened, _) = match open_all(ctx, inputs, &mut Problems::new(label, def)) {
            Ok(opened) => opened,
            Err(e) => return fail(writer, Err(e)).await,
        };
        let mut locator = Locator::new(&tracker, &stored);
        let mut stream = Box::pin(decoded(Arc::clone(ctx), opened));
        while let Some(piece) = stream.next().await {
            let piece = match piece {
                Ok(piece) => piece,
                Err(e) => return fail(writer, Err(e)).await,
            };
            let keys = tracker.keys_again(&piece.chunk.batch);
            locator.visit(
                &piece.meta.file,
                &piece.chunk.batch,
                &piece.chunk.lines,
                &keys,
                &mut problems,
            );
        }
    }
    if !problems.is_empty() {
        return fail(writer, Err(problems.into_error())).await;
    }
    Ok(Checked {
        gathered,
        written: writer,
        ignored,
    })
}

/// Removes what `writer` wrote and returns `result`.
async fn fail<T>(writer: Option<StagedWrite>, result: Result<T>) -> Result<T> {
    if let Some(writer) = writer {
        writer.discard().await;
    }
    result
}

fn open_all(
    ctx: &Ctx,
    inputs: &[Input],
    problems: &mut Problems,
) -> Result<(Vec<Opened>, Vec<String>)> {
    let mut opened = Vec::with_capacity(inputs.len());
    let mut ignored = Vec::new();
    for (order, input) in inputs.iter().enumerate() {
        let mut file = source::open(input, order, ctx.def, ctx.sheet.as_deref(), ctx.strict)?;
        problems.extend(std::mem::take(&mut file.header.problems));
        for column in std::mem::take(&mut file.header.ignored) {
            if !ignored.contains(&column) {
                ignored.push(column);
            }
        }
        opened.push(file);
    }
    Ok((opened, ignored))
}

/// The pieces of `opened`, typed and checked on the blocking pool, a few at a time,
/// in file order.
fn decoded(ctx: Arc<Ctx>, opened: Vec<Opened>) -> impl Stream<Item = Result<Decoded>> + Send {
    let pieces = opened.into_iter().flat_map(|file| {
        let meta = file.meta;
        file.pieces
            .map(move |piece| piece.map(|piece| (Arc::clone(&meta), piece)))
    });
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()) + 1;
    futures::stream::iter(pieces)
        .map(move |item| {
            let ctx = Arc::clone(&ctx);
            async move {
                let (meta, piece) = item?;
                tokio::task::spawn_blocking(move || decode(&ctx, meta, piece))
                    .await
                    .map_err(|e| Error::usage(format!("a checking task failed: {e}")))?
            }
        })
        .buffered(workers)
}

fn decode(ctx: &Ctx, meta: Arc<Meta>, piece: Piece) -> Result<Decoded> {
    let bytes = piece.bytes(&meta);
    let mut problems = Vec::new();
    let chunk = source::type_piece(ctx.def, &meta, &piece, &mut problems)?;
    rules::check(
        ctx.def,
        &meta.file,
        &chunk.batch,
        &chunk.lines,
        &mut problems,
    );
    let ids = ctx.codec.part_ids(&chunk.batch);
    ctx.refs
        .check(ctx.def, &ctx.codec, &ids, &meta.file, &chunk, &mut problems);
    if !problems.is_empty() {
        source::quote_file_text(ctx.def, &meta, &piece, &mut problems)?;
    }
    Ok(Decoded {
        meta,
        chunk,
        problems,
        ids,
        bytes,
    })
}

/// The progress bar: bytes and rows done, throughput, and the phase.
struct Progress {
    bar: ProgressBar,
    started: Instant,
}

impl Progress {
    fn new(enabled: bool, total_bytes: u64) -> Self {
        let bar = if enabled {
            let bar = ProgressBar::new(total_bytes);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {binary_bytes}/{binary_total_bytes} ({binary_bytes_per_sec}) {msg}, {elapsed}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        } else {
            ProgressBar::hidden()
        };
        Progress {
            bar,
            started: Instant::now(),
        }
    }

    fn start_pass(&self) {
        self.bar.set_position(0);
        self.bar.reset_eta();
    }

    fn phase(&self, phase: &str) {
        self.bar.set_prefix(phase.to_string());
    }

    fn advance(&self, bytes: u64, rows: usize) {
        self.bar.inc(bytes);
        let seconds = self.started.elapsed().as_secs_f64().max(0.001);
        self.bar.set_message(format!(
            "{} rows, {:.2}M rows/s",
            indicatif::HumanCount(rows as u64),
            rows as f64 / seconds / 1e6
        ));
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// The rules one table's rows can break by themselves (rows, ranges, cross-column
/// rules and keys unique within the rows), run exactly as ingest runs them. Used for
/// rows built in code, such as the generated sample.
pub fn check_rows(def: &TableDef, rows: &validate::Rows, problems: &mut Problems) -> Result<()> {
    let file = validate::FileRef::new(&problems.input.clone(), 0);
    let batches = rows.to_batches(def, 64 * 1024)?;
    let mut tracker = KeyTracker::new(def, KeyCodec::local(def)?);
    let mut at = 0;
    for batch in &batches {
        let lines = &rows.lines[at..at + batch.num_rows()];
        at += batch.num_rows();
        let mut found = Vec::new();
        rules::check(def, &file, batch, lines, &mut found);
        problems.extend(found);
        let ids = tracker.codec.part_ids(batch);
        tracker.add(batch, ids);
    }
    if !tracker.repeated.is_empty() {
        let none = Default::default();
        let mut locator = Locator::new(&tracker, &none);
        let mut at = 0;
        for batch in &batches {
            let lines = &rows.lines[at..at + batch.num_rows()];
            at += batch.num_rows();
            locator.visit(&file, batch, lines, &tracker.keys_again(batch), problems);
        }
    }
    Ok(())
}
