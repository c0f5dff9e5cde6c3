"""Optional Weights & Biases tracking (`train.py --track`), in CleanRL's convention: one W&B run
per training run, named like it, holding its flags as the config and every scalar the Logger
writes to TensorBoard, at the same env step. Its W&B id is drawn at random when the run starts
and kept in `<logdir>/wandb/<run>.id`, so a resumed run continues its W&B run while
another run of the same name (a sweep re-run into a fresh logdir, same W&B project) gets its own.
W&B keeps the first values it was sent for a step: the steps a resumed run repeats (those after
its checkpoint) keep the interrupted run's values there, where the CSV and TensorBoard hold the
resumed run's.

The Logger hands the scalars over itself rather than through wandb's `sync_tensorboard`: that
patch imports every TensorBoard writer it can find, TensorFlow's included, so a PyTorch run
would load TensorFlow (measured: wandb.init went from 1.6 s to 18 s). The W&B run lives in
`<logdir>/wandb/` like every other output of the run (wandb's debug logs too, in
`<logdir>/wandb/cache/` unless WANDB_CACHE_DIR is set), and wandb prints nothing;
`WANDB_MODE=offline` records it there without an account, for a later `wandb sync`.
"""
import contextlib
import os
import secrets

from utils.os_utils import write_atomic

INSTALL_HINT = 'pip install -r requirements-extra.txt'


class TrackingError(RuntimeError):
    """W&B cannot record this run (not installed, or no login)."""


class Tracker:
    def __init__(self, args, name, logdir, resume=False):
        """`resume`: continue the W&B run of this run's id file; a fresh start draws a new id (a
        run deleted and started again under its name gets a W&B run of its own)."""
        try:
            import wandb
        except ImportError:
            raise TrackingError(f'--track needs wandb, which is not installed; {INSTALL_HINT}') from None
        id_path = os.path.join(logdir, 'wandb', f'{name}.id')  # beside W&B's own files, not in the run's folder
        run_id = None
        if resume:
            with contextlib.suppress(FileNotFoundError):
                with open(id_path) as file:
                    run_id = file.read().strip()
        os.makedirs(logdir, exist_ok=True)
        # The service wandb starts here writes its debug logs to wandb's cache folder, ~/.cache/wandb
        # unless the user chose one: they go under --logdir with the run's other W&B files.
        user_cache = os.environ.get('WANDB_CACHE_DIR')
        os.environ['WANDB_CACHE_DIR'] = user_cache or os.path.join(logdir, 'wandb', 'cache')
        try:
            self.run = wandb.init(project=args.wandb_project, entity=args.wandb_entity, name=name,
                                  id=run_id or secrets.token_hex(8), resume='allow', config=vars(args), dir=logdir,
                                  settings=wandb.Settings(silent=True))  # the run prints the project's lines only
        except wandb.errors.Error as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise TrackingError(f'--track: wandb could not start a run ({reason}); log in with `wandb login`, '
                                'or set WANDB_MODE=offline to record the run locally') from None
        finally:  # the next run of this process (a sweep worker) may have another logdir
            if user_cache is None:
                del os.environ['WANDB_CACHE_DIR']
            else:
                os.environ['WANDB_CACHE_DIR'] = user_cache
        if run_id != self.run.id:  # written once W&B has the run: a failed login leaves no file behind
            write_atomic(id_path, lambda file: file.write(self.run.id + '\n'))

    def log(self, scalars, step):
        self.run.log(scalars, step=step)

    def close(self):
        """Finish the run and wait for wandb's service to write (or upload) all of it."""
        import wandb
        self.run.finish()
        wandb.teardown()
