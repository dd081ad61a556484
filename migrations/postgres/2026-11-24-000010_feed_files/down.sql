DROP TABLE feed_files;
