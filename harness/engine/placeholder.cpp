int bm_engine_placeholder() { return 0; }
