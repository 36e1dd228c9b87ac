CREATE INDEX inbox_by_age ON inbox (processed_at);
