"""A run on disk, for everything that writes or reads one: `checkpoint` (the one checkpoint format:
save, read, `load_model`), `folder` (the run folder: `RunFolder`, and the run-level files memory.json and
the config's index section, read and written here only) and `device` (where a model runs). Training
(nextvec.train, nextvec.decode.learned_train) writes runs; the Session and the learned decoder load them."""
