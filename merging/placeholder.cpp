int bm_merging_placeholder() { return 0; }
