pub mod index_entry;
pub mod record_batch;
