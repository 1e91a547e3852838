//! What crosses the wire beyond DataFusion's own plans: a warehouse table travels as
//! its snapshot's [`TableFiles`], and `perf_grade` carries the grade scheme of the
//! session that planned it, so every member grades alike whatever its own setting.
//! Everything else is Ballista's codec.

use std::sync::Arc;

use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::common::{plan_datafusion_err, plan_err, Result, TableReference};
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Extension, LogicalPlan, ScalarUDF};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};

use crate::functions::perf_grade::PerfGrade;
use crate::functions::GradeScheme;
use crate::storage::FilesTable;
use crate::storage::{DeltaSnapshotTable, LiveTable, TableFiles};

/// The files of `provider` when it is a warehouse table or rollup that a cluster can
/// read; otherwise why not.
pub fn shippable(
    provider: &Arc<dyn TableProvider>,
) -> std::result::Result<Arc<TableFiles>, String> {
    let snapshot;
    let provider = match provider.downcast_ref::<LiveTable>() {
        Some(live) => {
            snapshot = live.snapshot().provider;
            &snapshot
        }
        None => provider,
    };
    let Some(table) = provider.downcast_ref::<DeltaSnapshotTable>() else {
        return Err("it is not a warehouse table".into());
    };
    match &table.files().unsupported {
        Some(reason) => Err(reason.clone()),
        None => Ok(Arc::clone(table.files())),
    }
}

/// Writes the scheme `perf_grade` was planned with; other functions go to `inner`.
fn encode_udf(
    node: &ScalarUDF,
    buf: &mut Vec<u8>,
    inner: impl FnOnce(&ScalarUDF, &mut Vec<u8>) -> Result<()>,
) -> Result<()> {
    match node.inner().downcast_ref::<PerfGrade>() {
        Some(grade) => {
            buf.extend(grade.default_scheme().name().as_bytes());
            Ok(())
        }
        None => inner(node, buf),
    }
}

/// `perf_grade` with the scheme it was planned with; other functions from `inner`.
fn decode_udf(
    name: &str,
    buf: &[u8],
    inner: impl FnOnce(&str, &[u8]) -> Result<Arc<ScalarUDF>>,
) -> Result<Arc<ScalarUDF>> {
    if name != "perf_grade" || buf.is_empty() {
        return inner(name, buf);
    }
    let text = String::from_utf8_lossy(buf);
    match GradeScheme::parse(&text) {
        Some(scheme) => Ok(Arc::new(ScalarUDF::from(PerfGrade::new(scheme)))),
        None => plan_err!("perf_grade arrived with an unknown grade scheme '{text}'"),
    }
}

/// Logical plans: client to scheduler.
#[derive(Debug, Default)]
pub struct LogicalCodec {
    inner: BallistaLogicalExtensionCodec,
}

impl LogicalExtensionCodec for LogicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> Result<Extension> {
        self.inner.try_decode(buf, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        _ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        let files: TableFiles = serde_json::from_slice(buf)
            .map_err(|e| plan_datafusion_err!("table {table_ref} arrived unreadable: {e}"))?;
        Ok(Arc::new(FilesTable::new(files, schema)))
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        let files = shippable(&node).map_err(|why| {
            plan_datafusion_err!("table {table_ref} cannot be read on a cluster: {why}")
        })?;
        serde_json::to_writer(buf, files.as_ref())
            .map_err(|e| plan_datafusion_err!("table {table_ref}: {e}"))
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> Result<Arc<dyn FileFormatFactory>> {
        self.inner.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn FileFormatFactory>,
    ) -> Result<()> {
        self.inner.try_encode_file_format(buf, node)
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        decode_udf(name, buf, |name, buf| self.inner.try_decode_udf(name, buf))
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        encode_udf(node, buf, |node, buf| self.inner.try_encode_udf(node, buf))
    }
}

/// Physical plans: scheduler to executors.
#[derive(Debug, Default)]
pub struct PhysicalCodec {
    inner: BallistaPhysicalExtensionCodec,
}

impl PhysicalExtensionCodec for PhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.inner.try_decode(buf, inputs, ctx, converter)
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        self.inner.try_encode(node, buf, converter)
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        decode_udf(name, buf, |name, buf| self.inner.try_decode_udf(name, buf))
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        encode_udf(node, buf, |node, buf| self.inner.try_encode_udf(node, buf))
    }
}
