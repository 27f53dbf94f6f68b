//! Object storage: the bucket client, block shipping and reading blocks from the bucket.
