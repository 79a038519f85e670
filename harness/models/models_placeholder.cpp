int bm_models_placeholder() { return 0; }
