//! One table of a report, formatted: what `collector stats` prints and `collector report` lays
//! out as HTML, whichever module built it.

/// One of the report's tables, formatted: shared by the text (`collector stats`) and HTML
/// (`collector report`) renderings.
#[derive(Debug, Clone, PartialEq)]
pub struct TableData {
    /// What the table shows.
    pub title: &'static str,
    /// Column names.
    pub header: Vec<&'static str>,
    /// Formatted cells.
    pub rows: Vec<Vec<String>>,
    /// Columns holding numbers (right-aligned).
    pub numeric: Vec<usize>,
}
