//! CSV for scripts and Excel: one file per section, raw column names and plain
//! values, lists joined with 、 (the run's manifest.json beside it records the SQL
//! and table versions). With `bom`, the file starts with the UTF-8 byte-order mark
//! that Excel needs to read Chinese from a double-clicked CSV.

use datafusion::arrow::csv::WriterBuilder;

use super::run::SectionOutcome;
use crate::Result;

/// The UTF-8 byte-order mark.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

pub fn render(section: &SectionOutcome, bom: bool) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    if bom {
        bytes.extend_from_slice(BOM);
    }
    {
        let mut writer = WriterBuilder::new().with_header(true).build(&mut bytes);
        if section.batches.is_empty() {
            let empty =
                datafusion::arrow::record_batch::RecordBatch::new_empty(section.schema.clone());
            writer.write(&crate::output::csv_ready(&empty)?)?;
        }
        for batch in &section.batches {
            writer.write(&crate::output::lists_joined(
                batch,
                super::cells::LIST_SEPARATOR,
            )?)?;
        }
    }
    Ok(bytes)
}
