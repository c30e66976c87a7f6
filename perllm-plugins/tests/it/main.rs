//! Integration tests of the bundled plugins.

mod vidur_table;
