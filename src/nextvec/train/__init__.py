"""Training: `loop.train` (the LVM trainer), `checkpoint` (the one checkpoint format, `load_model`),
`schedule` (`get_lr`, `EarlyStopping`), `run_folder.RunFolder`, DDP helpers; the learned decoder's trainer
(nextvec.decode.learned_train) uses the same pieces."""
