//! Safe CSV reading shared by the CSV payloads: `;`-separated UTF-8 with a
//! header row, every field checked with its line and column.
