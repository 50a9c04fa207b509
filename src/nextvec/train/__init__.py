"""Training: `loop.train` (the LVM trainer), `schedule` (`get_lr`, `EarlyStopping`), `memory` (the successor
memory's fit after training), `threads`, DDP helpers (`distributed`). Runs are written through nextvec.run
(the checkpoint format and the run folder), which the learned decoder's trainer
(nextvec.decode.learned_train) shares."""
