//! Small scans' files kept in memory between queries.
//!
//! A question over a rollup or a dimension table reads a few small files; fetching
//! them costs more than the rest of the query (on disk a blocking read handed to
//! another thread per range, in a bucket a round trip). A scan that reads at most
//! [`RESIDENT_ROWS`] rows (by the Delta log) reads its files through [`ResidentFiles`]:
//! each file whole, once, into the session's [`Resident`], and every later read of it
//! from there. The scan is DataFusion's Parquet scan as before (its pruning, its
//! `EXPLAIN`), only its bytes come from memory. A Delta data file never changes under
//! its name, so a file kept stays right for as long as it is kept: a table's new version
//! is new files. Once the files kept pass the budget, the least recently used go first.

use std::ops::Range;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use datafusion::common::Result;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::{
    CachedParquetFileReaderFactory, ParquetFileReaderFactory,
};
use datafusion::execution::cache::cache_manager::FileMetadataCache;
use datafusion::parquet::arrow::arrow_reader::ArrowReaderOptions;
use datafusion::parquet::arrow::async_reader::AsyncFileReader;
use datafusion::parquet::errors::ParquetError;
use datafusion::parquet::file::metadata::ParquetMetaData;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use futures::future::BoxFuture;
use futures::FutureExt;
use lru::LruCache;
use object_store::{ObjectStore, ObjectStoreExt};

/// The most rows a scan may read to have its files kept in memory.
pub const RESIDENT_ROWS: usize = 100_000;

/// The files a session's scans of few rows keep in memory: a session config extension
/// (`SessionConfig::with_extension`); a session without one reads every scan from its
/// store.
#[derive(Debug)]
pub struct Resident {
    budget: usize,
    held: Mutex<Held>,
}

#[derive(Debug)]
struct Held {
    files: LruCache<Key, Bytes>,
    bytes: usize,
}

/// A data file by its store, path and size.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    file: String,
    size: u64,
}

impl Resident {
    /// The budget when nothing else is said: room for every rollup and dimension
    /// table of a province's warehouse.
    pub const DEFAULT_BUDGET: usize = 128 << 20;

    /// Keeps at most `budget` bytes of files.
    pub fn new(budget: usize) -> Self {
        Resident {
            budget,
            held: Mutex::new(Held {
                files: LruCache::unbounded(),
                bytes: 0,
            }),
        }
    }

    /// The bytes of files held now.
    pub fn held_bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Whether a scan of `rows` rows in `bytes` bytes of files keeps them in memory:
    /// few rows, in files small enough that one scan cannot push out most of the rest.
    pub fn serves(&self, rows: Option<usize>, bytes: usize) -> bool {
        rows.is_some_and(|rows| rows <= RESIDENT_ROWS) && bytes <= self.budget / 4
    }

    fn get(&self, key: &Key) -> Option<Bytes> {
        self.lock().files.get(key).cloned()
    }

    fn keep(&self, key: Key, file: Bytes) {
        if file.len() > self.budget {
            return;
        }
        let mut held = self.lock();
        held.bytes += file.len();
        if let Some(replaced) = held.files.put(key, file) {
            held.bytes -= replaced.len();
        }
        while held.bytes > self.budget {
            let Some((_, evicted)) = held.files.pop_lru() else {
                break;
            };
            held.bytes -= evicted.len();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        // Nothing here can leave the map half-changed: a panic elsewhere while it was
        // held does not make it wrong.
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Default for Resident {
    /// [`Resident::DEFAULT_BUDGET`].
    fn default() -> Self {
        Resident::new(Resident::DEFAULT_BUDGET)
    }
}

/// A Parquet scan's readers that take each file's bytes from a [`Resident`], fetching
/// the whole file on its first read; footers come from the runtime's metadata cache,
/// as with DataFusion's [`CachedParquetFileReaderFactory`].
#[derive(Debug)]
pub struct ResidentFiles {
    store: Arc<dyn ObjectStore>,
    /// The store's URL (`file://`, `s3://bucket`), which keys its files.
    url: String,
    footers: CachedParquetFileReaderFactory,
    resident: Arc<Resident>,
}

impl ResidentFiles {
    pub fn new(
        store: Arc<dyn ObjectStore>,
        url: String,
        metadata: Arc<FileMetadataCache>,
        resident: Arc<Resident>,
    ) -> Self {
        ResidentFiles {
            footers: CachedParquetFileReaderFactory::new(Arc::clone(&store), metadata),
            store,
            url,
            resident,
        }
    }
}

impl ParquetFileReaderFactory for ResidentFiles {
    fn create_reader(
        &self,
        partition_index: usize,
        file: PartitionedFile,
        metadata_size_hint: Option<usize>,
        metrics: &ExecutionPlanMetricsSet,
    ) -> Result<Box<dyn AsyncFileReader + Send>> {
        let key = Key {
            file: format!("{}{}", self.url, file.object_meta.location),
            size: file.object_meta.size,
        };
        let location = file.object_meta.location.clone();
        let footer =
            self.footers
                .create_reader(partition_index, file, metadata_size_hint, metrics)?;
        Ok(Box::new(ResidentReader {
            footer,
            store: Arc::clone(&self.store),
            location,
            key,
            resident: Arc::clone(&self.resident),
            bytes: None,
        }))
    }
}

struct ResidentReader {
    /// Reads the footer (through the metadata cache).
    footer: Box<dyn AsyncFileReader + Send>,
    store: Arc<dyn ObjectStore>,
    location: object_store::path::Path,
    key: Key,
    resident: Arc<Resident>,
    /// The whole file, once this reader has it.
    bytes: Option<Bytes>,
}

impl ResidentReader {
    async fn file(&mut self) -> datafusion::parquet::errors::Result<Bytes> {
        if let Some(bytes) = &self.bytes {
            return Ok(bytes.clone());
        }
        let bytes = match self.resident.get(&self.key) {
            Some(bytes) => bytes,
            None => {
                let fetched = async { self.store.get(&self.location).await?.bytes().await }
                    .await
                    .map_err(|e| ParquetError::External(Box::new(e)))?;
                self.resident.keep(self.key.clone(), fetched.clone());
                fetched
            }
        };
        self.bytes = Some(bytes.clone());
        Ok(bytes)
    }
}

/// The part of `file` in `range`, or the error a short file is.
fn part(file: &Bytes, range: Range<u64>) -> datafusion::parquet::errors::Result<Bytes> {
    let (start, end) = (range.start as usize, range.end as usize);
    if start > end || end > file.len() {
        return Err(ParquetError::EOF(format!(
            "bytes {start}..{end} asked of a file of {} bytes",
            file.len()
        )));
    }
    Ok(file.slice(start..end))
}

impl AsyncFileReader for ResidentReader {
    fn get_bytes(
        &mut self,
        range: Range<u64>,
    ) -> BoxFuture<'_, datafusion::parquet::errors::Result<Bytes>> {
        async move { part(&self.file().await?, range) }.boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, datafusion::parquet::errors::Result<Vec<Bytes>>> {
        async move {
            let file = self.file().await?;
            ranges.into_iter().map(|range| part(&file, range)).collect()
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, datafusion::parquet::errors::Result<Arc<ParquetMetaData>>> {
        self.footer.get_metadata(options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{DataFile, FilesTable, TableFiles};
    use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::parquet::arrow::ArrowWriter;
    use datafusion::prelude::{SessionConfig, SessionContext};

    /// Scores of `years`, one Parquet file per year under `dir` (the year a partition
    /// column, as in the warehouse), `rows` rows in each.
    fn files(dir: &std::path::Path, rows: i64, years: std::ops::Range<i64>) -> TableFiles {
        let files = years
            .map(|year| {
                let path = dir.join(format!("year={year}/part-0.parquet"));
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                let schema = Arc::new(Schema::new(vec![
                    Field::new("dept_code", DataType::Utf8, false),
                    Field::new("score", DataType::Int64, false),
                ]));
                let codes: Vec<String> = (0..rows).map(|i| format!("D{:03}", i % 7)).collect();
                let batch = RecordBatch::try_new(
                    Arc::clone(&schema),
                    vec![
                        Arc::new(StringArray::from(codes)),
                        Arc::new(Int64Array::from_iter_values(
                            (0..rows).map(|i| (i % 100) * year),
                        )),
                    ],
                )
                .unwrap();
                let file = std::fs::File::create(&path).unwrap();
                let mut writer = ArrowWriter::try_new(file, schema, None).unwrap();
                writer.write(&batch).unwrap();
                writer.close().unwrap();
                DataFile {
                    url: url::Url::from_file_path(&path).unwrap().to_string(),
                    size: std::fs::metadata(&path).unwrap().len(),
                    partition_values: vec![Some(year.to_string())],
                    rows: Some(rows as u64),
                }
            })
            .collect();
        TableFiles {
            table: url::Url::from_directory_path(dir).unwrap().to_string(),
            version: 1,
            partition_columns: vec!["year".into()],
            files,
            unsupported: None,
        }
    }

    fn schema(extra: bool) -> SchemaRef {
        let mut fields = vec![
            Field::new("dept_code", DataType::Utf8, false),
            Field::new("score", DataType::Int64, false),
            Field::new("year", DataType::Int32, false),
        ];
        if extra {
            fields.push(Field::new("note", DataType::Utf8, true));
        }
        Arc::new(Schema::new(fields))
    }

    /// A session over `files` as table `scores`, keeping files in `resident` if given.
    fn session(
        files: &TableFiles,
        schema: SchemaRef,
        resident: Option<&Arc<Resident>>,
    ) -> SessionContext {
        let mut config = SessionConfig::new().with_target_partitions(2);
        if let Some(resident) = resident {
            config = config.with_extension(Arc::clone(resident));
        }
        let ctx = SessionContext::new_with_config(config);
        ctx.register_table("scores", Arc::new(FilesTable::new(files.clone(), schema)))
            .unwrap();
        ctx
    }

    /// The rows of `sql`'s answer, sorted (rows that tie in an ORDER BY may come in
    /// any order).
    async fn answer(ctx: &SessionContext, sql: &str) -> Vec<String> {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let text = pretty_format_batches(&batches).unwrap().to_string();
        let mut rows: Vec<String> = text.lines().map(str::to_string).collect();
        rows.sort();
        rows
    }

    fn size(files: &TableFiles, years: usize) -> usize {
        files.files[..years].iter().map(|f| f.size as usize).sum()
    }

    const QUESTIONS: &[&str] = &[
        "SELECT * FROM scores ORDER BY year, score",
        "SELECT year, dept_code, sum(score) FROM scores GROUP BY year, dept_code ORDER BY 1, 2",
        "SELECT dept_code, score FROM scores WHERE year = 2023 AND score > 4000 ORDER BY score",
        "SELECT count(*), min(year) FROM scores WHERE year < 2023",
        "SELECT year FROM scores WHERE year > 2030",
        "SELECT a.dept_code, a.score - b.score FROM scores a JOIN scores b \
         ON a.dept_code = b.dept_code AND a.score = b.score + 1 AND a.year = b.year \
         ORDER BY 1, 2 LIMIT 5",
        "SELECT dept_code FROM scores WHERE score < 30000 LIMIT 3",
    ];

    #[tokio::test]
    async fn a_small_table_answers_from_its_files_kept_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let files = files(dir.path(), 50, 2022..2024);
        let resident = Arc::new(Resident::default());
        let held = session(&files, schema(false), Some(&resident));
        let read = session(&files, schema(false), None);
        let mut answers = Vec::new();
        for sql in QUESTIONS {
            let answer = answer(&held, sql).await;
            assert_eq!(answer, self::answer(&read, sql).await, "{sql}");
            answers.push(answer);
        }
        // Each file once, whole.
        assert_eq!(resident.held_bytes(), size(&files, 2));
        // The plan is the Parquet scan of the files left after pruning.
        let plan = answer(&held, "EXPLAIN SELECT * FROM scores WHERE year = 2023").await;
        let plan = plan.join("\n");
        assert!(
            plan.contains("file_type=parquet") && plan.contains("year=2023"),
            "{plan}"
        );
        assert!(!plan.contains("year=2022"), "{plan}");

        // Kept: answered with the files gone, the same.
        std::fs::remove_dir_all(dir.path().join("year=2022")).unwrap();
        std::fs::remove_dir_all(dir.path().join("year=2023")).unwrap();
        for (sql, kept) in QUESTIONS.iter().zip(&answers) {
            assert_eq!(&answer(&held, sql).await, kept, "{sql}");
        }
        let gone = read.sql(QUESTIONS[0]).await.unwrap().collect().await;
        assert!(gone.is_err());
    }

    #[tokio::test]
    async fn many_rows_are_read_from_their_store() {
        let dir = tempfile::tempdir().unwrap();
        let rows = RESIDENT_ROWS as i64 / 2 + 1;
        let files = files(dir.path(), rows, 2022..2024);
        let resident = Arc::new(Resident::default());
        let ctx = session(&files, schema(false), Some(&resident));
        let read = session(&files, schema(false), None);
        let all = "SELECT year, sum(score) FROM scores GROUP BY year";
        assert_eq!(answer(&ctx, all).await, answer(&read, all).await);
        assert_eq!(resident.held_bytes(), 0);
        // One year is few enough.
        let one = "SELECT sum(score) FROM scores WHERE year = 2022";
        assert_eq!(answer(&ctx, one).await, answer(&read, one).await);
        assert_eq!(resident.held_bytes(), size(&files, 1));
    }

    #[tokio::test]
    async fn a_kept_file_reads_under_a_later_schema() {
        let dir = tempfile::tempdir().unwrap();
        let files = files(dir.path(), 20, 2022..2024);
        let resident = Arc::new(Resident::default());
        let old = session(&files, schema(false), Some(&resident));
        let new = session(&files, schema(true), Some(&resident));
        answer(&old, "SELECT * FROM scores").await;
        let added = answer(
            &new,
            "SELECT count(*) AS n, count(note) AS notes FROM scores",
        )
        .await;
        assert!(added.iter().any(|row| row == "| 40 | 0     |"), "{added:?}");
        assert_eq!(resident.held_bytes(), size(&files, 2));
    }

    #[tokio::test]
    async fn the_budget_holds() {
        let dir = tempfile::tempdir().unwrap();
        let files = files(dir.path(), 2_000, 2020..2026);
        let one = files.files[0].size as usize;
        // Room for four years' files: each scan of one year is kept, pushing out the
        // least recently used; a scan of them all is not.
        let budget = one * 9 / 2;
        let small = Arc::new(Resident::new(budget));
        let ctx = session(&files, schema(false), Some(&small));
        let read = session(&files, schema(false), None);
        let years = (2020..2026).chain(2020..2026).chain([2023, 2021, 2025]);
        for year in years {
            let sql =
                format!("SELECT dept_code, sum(score) FROM scores WHERE year = {year} GROUP BY 1");
            assert_eq!(answer(&ctx, &sql).await, answer(&read, &sql).await, "{sql}");
            assert!(small.held_bytes() <= budget);
        }
        assert_eq!(small.held_bytes(), 4 * one);
        for sql in QUESTIONS {
            assert_eq!(answer(&ctx, sql).await, answer(&read, sql).await, "{sql}");
            assert_eq!(small.held_bytes(), 4 * one);
        }
    }
}
