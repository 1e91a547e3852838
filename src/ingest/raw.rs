//! Input files as text cells before any typing: what every reader produces, so that
//! validation treats CSV, XLSX and Parquet alike and reports rows as the user sees them.

/// A table of text cells read from one file. An empty cell is a missing value.
#[derive(Debug)]
pub struct RawTable {
    /// The file as the user named it, for messages.
    pub path: String,
    pub headers: Vec<String>,
    pub rows: Vec<RawRow>,
}

#[derive(Debug)]
pub struct RawRow {
    /// The row number a user finds in the file: the line of a CSV (header = 1), the
    /// spreadsheet row of an XLSX, the 1-based data row of a Parquet file plus one.
    pub line: usize,
    pub cells: Vec<String>,
}
