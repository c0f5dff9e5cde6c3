"""Optional Weights & Biases tracking (`train.py --track`), in CleanRL's convention: one W&B run
per training run, named like it (its id is the run name, so a resumed run continues it), holding its flags as the config and every scalar the Logger
writes to TensorBoard, at the same env step.

The Logger hands the scalars over itself rather than through wandb's `sync_tensorboard`: that
patch imports every TensorBoard writer it can find, TensorFlow's included, so a PyTorch run
would load TensorFlow (measured: wandb.init went from 1.6 s to 18 s). The W&B run lives in
`<logdir>/wandb/` like every other output of the run; `WANDB_MODE=offline` records it there
without an account, for a later `wandb sync`.
"""
import os

INSTALL_HINT = 'pip install -r requirements-extra.txt'


class Tracker:
    def __init__(self, args, name, logdir):
        try:
            import wandb
        except ImportError:
            raise ValueError(f'--track needs wandb, which is not installed; {INSTALL_HINT}') from None
        os.makedirs(logdir, exist_ok=True)
        try:
            self.run = wandb.init(project=args.wandb_project, entity=args.wandb_entity, name=name, id=name,
                                  resume='allow', config=vars(args), dir=logdir)
        except wandb.errors.Error as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ValueError(f'--track: wandb could not start a run ({reason}); log in with `wandb login`, '
                             'or set WANDB_MODE=offline to record the run locally') from None

    def log(self, scalars, step):
        self.run.log(scalars, step=step)

    def close(self):
        """Finish the run and wait for wandb's service to write (or upload) all of it."""
        import wandb
        self.run.finish()
        wandb.teardown()
