//! A Delta snapshot's file list as a table whose scan is DataFusion's own Parquet
//! scan: what a session reads a snapshot through (no Delta scan in between), and what
//! a cluster's scheduler plans with, which Ballista splits into tasks and sends to
//! executors as it is. The filters of the query prune files by partition value and
//! row groups by statistics.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::Array;
use datafusion::arrow::datatypes::{Field, FieldRef, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::Session;
use datafusion::common::cast::as_boolean_array;
use datafusion::common::stats::Precision;
use datafusion::common::{
    plan_datafusion_err, plan_err, DFSchema, Result, ScalarValue, Statistics,
};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::CachedParquetFileReaderFactory;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::ExecutionPlan;
use url::Url;

use super::resident::{Resident, ResidentFiles};
use super::TableFiles;

#[derive(Debug)]
pub struct FilesTable {
    files: TableFiles,
    /// The schema the client planned with (Delta's own, partition columns in place).
    schema: SchemaRef,
}

impl FilesTable {
    pub fn new(files: TableFiles, schema: SchemaRef) -> Self {
        FilesTable { files, schema }
    }

    /// The Parquet scan's table schema: the file columns, then the partition columns
    /// (where DataFusion puts them), and for each of our columns its place there.
    fn layout(&self) -> Result<(SchemaRef, Vec<FieldRef>, Vec<usize>)> {
        let partition: Vec<FieldRef> = self
            .files
            .partition_columns
            .iter()
            .map(|name| {
                self.schema
                    .field_with_name(name)
                    .map(|f| Arc::new(f.clone()))
                    .map_err(|_| {
                        plan_datafusion_err!(
                            "table {}: partition column {name} is not in its schema",
                            self.files.table
                        )
                    })
            })
            .collect::<Result<_>>()?;
        let is_partition = |f: &Field| self.files.partition_columns.contains(f.name());
        let file_fields: Vec<FieldRef> = self
            .schema
            .fields()
            .iter()
            .filter(|f| !is_partition(f))
            .cloned()
            .collect();
        let order: Vec<&str> = file_fields
            .iter()
            .chain(&partition)
            .map(|f| f.name().as_str())
            .collect();
        let places = self
            .schema
            .fields()
            .iter()
            .map(|f| {
                order
                    .iter()
                    .position(|n| n == f.name())
                    .expect("every column placed")
            })
            .collect();
        Ok((Arc::new(Schema::new(file_fields)), partition, places))
    }

    fn partitioned_files(
        &self,
        partition: &[FieldRef],
        table_schema: &Schema,
    ) -> Result<Vec<PartitionedFile>> {
        self.files
            .files
            .iter()
            .map(|file| {
                let url = Url::parse(&file.url)
                    .map_err(|e| plan_datafusion_err!("data file {}: {e}", file.url))?;
                let path = object_store::path::Path::from_url_path(url.path())
                    .map_err(|e| plan_datafusion_err!("data file {}: {e}", file.url))?;
                let values = partition
                    .iter()
                    .zip(&file.partition_values)
                    .map(|(field, value)| match value {
                        Some(text) => ScalarValue::try_from_string(text.clone(), field.data_type()),
                        None => ScalarValue::try_from(field.data_type()),
                    })
                    .collect::<Result<Vec<_>>>()?;
                let mut statistics = Statistics::new_unknown(table_schema);
                statistics.total_byte_size = Precision::Inexact(file.size as usize);
                if let Some(rows) = file.rows {
                    statistics.num_rows = Precision::Exact(rows as usize);
                }
                Ok(PartitionedFile::new(path.to_string(), file.size)
                    .with_partition_values(values)
                    .with_statistics(Arc::new(statistics)))
            })
            .collect()
    }

    /// The rows a scan with `filters` reads, as the Delta log records them: every
    /// file's, less the files the filters on partition columns leave out. `None` when
    /// a file's count is not recorded.
    pub fn rows_read(&self, state: &dyn Session, filters: &[Expr]) -> Option<u64> {
        let on_partitions: Vec<&Expr> = filters.iter().filter(|f| self.on_partitions(f)).collect();
        if on_partitions.is_empty() {
            return self.files.files.iter().map(|f| f.rows).sum();
        }
        let (file_schema, partition, _) = self.layout().ok()?;
        let table_schema = TableSchema::builder(file_schema)
            .with_table_partition_cols(partition.clone())
            .build();
        let files = self
            .partitioned_files(&partition, table_schema.table_schema())
            .ok()?;
        let read = self.prune(state, files, &partition, &on_partitions).ok()?;
        read.iter()
            .map(|f| match f.statistics.as_ref().map(|s| s.num_rows) {
                Some(Precision::Exact(n)) => Some(n as u64),
                _ => None,
            })
            .sum()
    }

    /// Whether `filter` reads partition columns and nothing else.
    fn on_partitions(&self, filter: &Expr) -> bool {
        let columns = filter.column_refs();
        !columns.is_empty()
            && columns
                .iter()
                .all(|c| self.files.partition_columns.contains(&c.name))
    }

    /// The files whose partition values pass every one of `filters` (each on
    /// partition columns alone).
    fn prune(
        &self,
        state: &dyn Session,
        files: Vec<PartitionedFile>,
        partition: &[FieldRef],
        filters: &[&Expr],
    ) -> Result<Vec<PartitionedFile>> {
        let Some(filter) = conjunction(filters.iter().map(|f| (*f).clone())) else {
            return Ok(files);
        };
        if files.is_empty() {
            return Ok(files);
        }
        let schema = Arc::new(Schema::new(partition.to_vec()));
        let columns = (0..partition.len())
            .map(|i| {
                ScalarValue::iter_to_array(files.iter().map(|f| f.partition_values[i].clone()))
            })
            .collect::<Result<Vec<_>>>()?;
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
        let predicate = state.create_physical_expr(filter, &DFSchema::try_from(schema)?)?;
        let keep = predicate.evaluate(&batch)?.into_array(files.len())?;
        let keep = as_boolean_array(&keep)?;
        Ok(files
            .into_iter()
            .enumerate()
            .filter(|(i, _)| keep.is_valid(*i) && keep.value(*i))
            .map(|(_, f)| f)
            .collect())
    }

    fn store(&self) -> Result<ObjectStoreUrl> {
        let Some(first) = self.files.files.first() else {
            return Ok(ObjectStoreUrl::local_filesystem());
        };
        let url = Url::parse(&first.url).map_err(|e| plan_datafusion_err!("{}: {e}", first.url))?;
        ObjectStoreUrl::parse(format!("{}://{}", url.scheme(), url.authority()))
    }
}

/// Spreads `files` over at most `n` groups of about equal bytes, largest first.
fn groups(mut files: Vec<PartitionedFile>, n: usize) -> Vec<FileGroup> {
    files.sort_by_key(|f| std::cmp::Reverse(f.object_meta.size));
    let mut groups: Vec<(u64, Vec<PartitionedFile>)> =
        vec![(0, Vec::new()); n.clamp(1, files.len().max(1))];
    for file in files {
        let smallest = groups
            .iter_mut()
            .min_by_key(|(bytes, _)| *bytes)
            .expect("one group");
        smallest.0 += file.object_meta.size;
        smallest.1.push(file);
    }
    groups
        .into_iter()
        .filter(|(_, files)| !files.is_empty())
        .map(|(_, files)| FileGroup::new(files))
        .collect()
}

#[async_trait]
impl TableProvider for FilesTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // A filter on partition columns alone picks whole files, exactly (as Delta's
        // own provider does); any other prunes row groups, and DataFusion still
        // filters every row.
        Ok(filters
            .iter()
            .map(|f| {
                if self.on_partitions(f) {
                    TableProviderFilterPushDown::Exact
                } else {
                    TableProviderFilterPushDown::Inexact
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if let Some(reason) = &self.files.unsupported {
            return plan_err!(
                "table {} cannot be read as plain Parquet files: {reason}",
                self.files.table
            );
        }
        let projection: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        if self.files.files.is_empty() {
            return Ok(Arc::new(EmptyExec::new(Arc::new(
                self.schema.project(&projection)?,
            ))));
        }
        let (file_schema, partition, places) = self.layout()?;
        let table_schema = TableSchema::builder(file_schema)
            .with_table_partition_cols(partition.clone())
            .build();
        let mut source = ParquetSource::new(table_schema.clone())
            .with_table_parquet_options(state.table_options().parquet.clone());
        let (on_partitions, on_rows): (Vec<&Expr>, Vec<&Expr>) =
            filters.iter().partition(|f| self.on_partitions(f));
        if let Some(filter) = conjunction(on_rows.into_iter().cloned()) {
            let df_schema = DFSchema::try_from(Arc::clone(table_schema.table_schema()))?;
            source = source.with_predicate(state.create_physical_expr(filter, &df_schema)?);
        }
        let files = self.prune(
            state,
            self.partitioned_files(&partition, table_schema.table_schema())?,
            &partition,
            &on_partitions,
        )?;
        if files.is_empty() {
            return Ok(Arc::new(EmptyExec::new(Arc::new(
                self.schema.project(&projection)?,
            ))));
        }
        // What the Delta log says about the files read: planners choose join sides by it.
        let mut statistics = Statistics::new_unknown(table_schema.table_schema());
        let rows: Option<usize> = files
            .iter()
            .map(|f| match f.statistics.as_ref().map(|s| s.num_rows) {
                Some(Precision::Exact(n)) => Some(n),
                _ => None,
            })
            .sum();
        if let Some(rows) = rows {
            statistics.num_rows = Precision::Exact(rows);
        }
        let bytes: usize = files.iter().map(|f| f.object_meta.size as usize).sum();
        statistics.total_byte_size = Precision::Inexact(bytes);
        // Footers read once per file and kept in the runtime's metadata cache (a Delta
        // data file never changes under its name), as DataFusion's own listing tables
        // do; a scan of few rows keeps its files whole in memory too ([`Resident`]).
        // Where this process has no store for the files (a scheduler planning for
        // executors), each reader finds it when it runs.
        let store_url = self.store()?;
        let runtime = state.runtime_env();
        if let Ok(store) = runtime.object_store(&store_url) {
            let footers = runtime.cache_manager.get_file_metadata_cache();
            let resident = state
                .config()
                .get_extension::<Resident>()
                .filter(|resident| resident.serves(rows, bytes));
            source = source.with_parquet_file_reader_factory(match resident {
                Some(resident) => Arc::new(ResidentFiles::new(
                    store,
                    store_url.to_string(),
                    footers,
                    resident,
                )),
                None => Arc::new(CachedParquetFileReaderFactory::new(store, footers)),
            });
        }
        let config = FileScanConfigBuilder::new(store_url, Arc::new(source))
            .with_statistics(statistics)
            .with_file_groups(groups(files, state.config().target_partitions()))
            .with_projection_indices(Some(projection.iter().map(|&i| places[i]).collect()))?
            .with_limit(limit)
            .build();
        Ok(DataSourceExec::from_data_source(config))
    }
}
