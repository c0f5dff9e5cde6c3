"""The training loop of docs/algorithms.md section 10, shared by every env category and both backends."""
import numpy as np


def random_action(args):
    """Uniform over the action space: the acting policy while the buffer warms up."""
    if args.discrete:
        return np.random.randint(args.acts_dims[0])
    return np.random.uniform(-1.0, 1.0, size=args.acts_dims).astype(np.float32)


class Episode:
    """Transitions of the running episode, handed to the buffer whole when it ends."""

    def __init__(self, obs):
        self.obs, self.acts, self.rews, self.done = [obs], [], [], []

    def add(self, action, reward, obs_next, terminated):
        self.obs.append(obs_next)
        self.acts.append(action)
        self.rews.append(reward)
        self.done.append(terminated)

    def arrays(self):
        return np.asarray(self.obs), np.asarray(self.acts), np.asarray(self.rews, np.float32), \
            np.asarray(self.done, np.float32)


class Learner:
    """A cycle = `iterations` x (`timesteps` exploring env steps, then, once the buffer holds
    `warmup` steps, one normaliser update and `train_batches` updates). Env state carries over
    between iterations and cycles; target updates count updates across the whole run.

    `stop_requested` (set by a signal handler) ends a cycle early, after the current env step or
    update; the position inside the cycle is kept, so `cycle()` later continues it exactly."""

    def __init__(self, args, env, agent, buffer, logger):
        self.args, self.env, self.agent, self.buffer, self.logger = args, env, agent, buffer, logger
        self.episode = Episode(env.reset(seed=args.seed))
        self.updates = 0
        self.env_steps = 0  # exploring env steps taken, including those of the running episode
        self.iteration = self.iteration_steps = self.iteration_updates = 0  # position in the cycle
        self.stop_requested = False
        # The updates the agent declares (one `train` when it declares none); TD3's are separate:
        # critics every update, the policy every pi_delay_freq-th
        self.split_updates = 'train_pi' in getattr(agent, 'update_kinds', ('train',))

    @property
    def warm(self):
        """Steps ever stored, as the original release counts: once warm, always warm (the steps held
        drop when whole episodes are evicted)."""
        return self.buffer.step_counter >= self.args.warmup

    def epsilon(self):
        """Linear decay per env step (counted from the start of the run) from eps_l to eps_r.

        Counted by the learner, not by `buffer.step_counter`, which only grows when an episode
        ends and would freeze epsilon for the length of each (Atari games run thousands of steps)."""
        progress = min(1.0, self.env_steps / self.args.eps_decay)
        return self.args.eps_l + (self.args.eps_r - self.args.eps_l) * progress

    def act(self, obs):
        """Before `warmup` steps are stored, DQN (and --random_warmup) acts uniformly at random;
        continuous agents act with their exploration policy from the first step, as the
        original release does on MuJoCo."""
        if not self.warm and (self.args.discrete or self.args.random_warmup):
            return random_action(self.args)
        if self.args.discrete:
            self.agent.epsilon = self.epsilon()
        return self.agent.step(obs, explore=True)

    def env_step(self):
        action = self.act(self.episode.obs[-1])
        obs, reward, terminated, truncated, _ = self.env.step(action)
        self.env_steps += 1
        self.episode.add(action, reward, obs, terminated)
        if terminated or truncated:
            self.buffer.store_episode(*self.episode.arrays())
            self.logger.add_dict(self.env.env_info, prefix='charts/Train')
            self.episode = Episode(self.env.reset())

    def train_step(self):
        self.updates += 1
        if self.split_updates:  # the delayed policy update draws a batch of its own
            info = self.agent.train_q(self.buffer.sample_batch())
            if self.updates % self.args.pi_delay_freq == 0:
                info.update(self.agent.train_pi(self.buffer.sample_batch()))
        else:
            info = self.agent.train(self.buffer.sample_batch())
        self.logger.add_dict(info, prefix='losses/')
        notices = getattr(self.agent, 'notices', None)  # the torch agents' one-off messages
        while notices:
            self.logger.print(notices.pop(0))
        if self.updates % self.args.train_target == 0:
            self.agent.target_update()

    def iterate(self):
        """The rest of the current iteration; False when stopped early."""
        while self.iteration_steps < self.args.timesteps:
            self.env_step()
            self.iteration_steps += 1
            if self.stop_requested:
                return False
        if not self.warm:
            return True
        if self.iteration_updates == 0 and self.args.obs_normalization:
            self.agent.normalizer_update(self.buffer.sample_batch())
        while self.iteration_updates < self.args.train_batches:
            self.train_step()
            self.iteration_updates += 1
            if self.stop_requested:
                return False
        return True

    def cycle(self):
        """The rest of the current cycle; False when stopped early (`stop_requested`)."""
        while self.iteration < self.args.iterations:
            if not self.iterate():
                return False
            self.iteration += 1
            self.iteration_steps = self.iteration_updates = 0
        self.iteration = 0
        if self.args.discrete:
            self.logger.add_record('charts/Epsilon', self.epsilon() if self.warm else 1.0)
        return True

    # ---- checkpoints ------------------------------------------------------------------------------
    def state(self):
        """Counters, the position in the cycle, the running episode and the env (epsilon follows
        from `env_steps`)."""
        return {'updates': self.updates, 'env_steps': self.env_steps,
                'position': (self.iteration, self.iteration_steps, self.iteration_updates),
                'episode': vars(self.episode), 'env': self.env.state()}

    def restore(self, state):
        """Restore `state`; the env replays the running episode (see envs/base.py) and must end
        where the saved episode did."""
        self.updates, self.env_steps = state['updates'], state['env_steps']
        self.iteration, self.iteration_steps, self.iteration_updates = state['position']
        self.episode = Episode(None)
        vars(self.episode).update(state['episode'])
        obs = self.env.restore(state['env'], self.episode.acts)
        if not np.array_equal(obs, self.episode.obs[-1]):
            self.logger.print('warning: replaying the running episode did not reproduce its last '
                              'observation; the resumed run continues from the replayed state')
            self.episode.obs[-1] = obs
