DROP TABLE case_timelines;
