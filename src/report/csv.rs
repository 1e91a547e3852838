//! CSV for scripts: one file per section, raw column names and plain values (the
//! run's manifest.json beside it records the SQL and table versions).

use datafusion::arrow::csv::WriterBuilder;

use super::run::SectionOutcome;
use crate::Result;

pub fn render(section: &SectionOutcome) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    {
        let mut writer = WriterBuilder::new().with_header(true).build(&mut bytes);
        if section.batches.is_empty() {
            let empty =
                datafusion::arrow::record_batch::RecordBatch::new_empty(section.schema.clone());
            writer.write(&crate::output::csv_ready(&empty)?)?;
        }
        for batch in &section.batches {
            writer.write(&crate::output::csv_ready(batch)?)?;
        }
    }
    Ok(bytes)
}
