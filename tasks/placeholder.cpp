int bm_tasks_placeholder() { return 0; }
