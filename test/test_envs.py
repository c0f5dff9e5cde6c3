"""Tests for envs/: the shared episode wrapper, the MuJoCo adapter and the Atari preprocessing."""
import logging
import sys
import subprocess
import warnings
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

import envs
from envs import envs_collection, make_env


def make_args(env, **kw):
    defaults = dict(env_type='ep_rews', test_timesteps=1000, seed=0)
    return SimpleNamespace(env=env, **{**defaults, **kw})


def atari_args(env='Pong', **kw):
    defaults = dict(test_timesteps=27000, sticky=False, noop=30, frames=4, rews_scale=1.0)
    return make_args(env, **{**defaults, **kw})


def rollout(env, act, seed=0):
    """One episode; returns the (reward, terminated, truncated, info) of every step."""
    env.reset(seed=seed)
    steps = []
    while True:
        _, reward, terminated, truncated, info = env.step(act())
        steps.append((reward, terminated, truncated, info))
        if terminated or truncated:
            return steps


def check_episodic(steps, env):
    dense = [info['dense_reward'] for *_, info in steps]
    rewards = [reward for reward, *_ in steps]
    assert rewards[:-1] == [0.0] * (len(steps) - 1)
    assert rewards[-1] == pytest.approx(sum(dense))
    assert env.env_info == {'Steps': len(steps), 'Rewards': pytest.approx(sum(dense))}


def test_import_is_cheap():
    code = 'import sys, envs; assert not {"gymnasium", "ale_py", "cv2", "mujoco"} & set(sys.modules)'
    subprocess.run([sys.executable, '-c', code], check=True, cwd=envs.__path__[0] + '/..')


def test_collection():
    assert len(envs.atari_list) == len(set(envs.atari_list)) == 62
    assert envs_collection['Ant-v2'] == envs_collection['HalfCheetah-v5'] == 'mujoco'
    assert envs_collection['Pong'] == 'atari' and envs_collection['CartPole-v1'] == 'classic'


def test_unknown_id_raises():
    with pytest.raises(ValueError, match="unknown env 'Nope-v0'.*Ant-v2.*Pong.*CartPole-v1"):
        make_env(make_args('Nope-v0'))


def test_cartpole_episodic_reward_and_termination():
    env = make_env(make_args('CartPole-v1'))
    assert (env.obs_dims, env.acts_dims, env.discrete, env.category) == ([4], [2], True, 'classic')
    steps = rollout(env, lambda: 1)  # always pushing right falls over quickly
    assert steps[-1][1:3] == (True, False) and len(steps) < 100
    check_episodic(steps, env)
    assert all(info['dense_reward'] == 1.0 for *_, info in steps)


def test_time_cap_truncates_and_normal_reward_is_dense():
    env = make_env(make_args('Pendulum-v1', env_type='normal', test_timesteps=7))
    assert env.discrete is False and env.acts_dims == [1]
    obs = env.reset(seed=0)
    assert obs.dtype == np.float32 and obs.shape == (3,)
    steps = rollout(env, lambda: np.zeros(1, np.float32))
    assert len(steps) == 7 and [s[1:3] for s in steps] == [(False, False)] * 6 + [(False, True)]
    assert all(reward == info['dense_reward'] != 0 for reward, *_, info in steps)
    assert env.env_info['Steps'] == 7
    env.reset()
    assert env.env_info == {'Steps': 0, 'Rewards': 0.0}


def test_mujoco_episodic_reward_with_cap():
    env = make_env(make_args('Swimmer-v5', test_timesteps=20))
    assert env.obs_dims == [8] and env.acts_dims == [2] and env.category == 'mujoco'
    rng = np.random.default_rng(0)
    steps = rollout(env, lambda: rng.uniform(-1, 1, 2).astype(np.float32))
    assert len(steps) == 20 and steps[-1][1:3] == (False, True)
    check_episodic(steps, env)


def test_v2_ids_map_to_v5_and_log_once(caplog, monkeypatch):
    import envs.mujoco
    monkeypatch.setattr(envs.mujoco, '_announced', set())
    with caplog.at_level(logging.INFO, logger='envs.mujoco'):
        env = make_env(make_args('Hopper-v2'))
        make_env(make_args('Hopper-v2'))
    assert env.env.spec.id == 'Hopper-v5'
    assert [r.getMessage() for r in caplog.records] == [
        'Hopper-v2 needs mujoco-py; running the maintained Hopper-v5 instead']


def test_v4_ids_run_as_asked_with_one_project_line(caplog, monkeypatch):
    """gymnasium's DeprecationWarning (printed with its source line) becomes one line of our logger."""
    import envs.mujoco
    monkeypatch.setattr(envs.mujoco, '_announced', set())
    with caplog.at_level(logging.INFO, logger='envs.mujoco'), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        env = make_env(make_args('Hopper-v4'))
        make_env(make_args('Hopper-v4'))
    assert env.env.spec.id == 'Hopper-v4'
    assert [str(warning.message) for warning in caught] == []
    assert [r.getMessage() for r in caplog.records] == [
        'Hopper-v4 is out of date (Hopper-v5 is the maintained version); running Hopper-v4 as asked']


def test_actions_scaled_by_bound(monkeypatch):
    env = make_env(make_args('Humanoid-v5'))
    np.testing.assert_allclose(env.act_bound, 0.4)
    env.reset(seed=0)
    sent = []
    real_step = env.env.step
    monkeypatch.setattr(env.env, 'step', lambda a: sent.append(a) or real_step(a))
    env.step(np.full(17, -1.0, np.float32))
    np.testing.assert_allclose(sent[0], -0.4)


def test_atari_obs_and_frame_preprocessing():
    env = make_env(atari_args())
    assert (env.obs_dims, env.discrete, env.category) == ([84, 84, 4], True, 'atari')
    assert env.acts_dims == [6]  # Pong's minimal action set
    assert env.reset(seed=0).shape == (84, 84, 4)
    seen = []
    for t, a in enumerate([2, 3, 1, 0, 2, 5, 4]):
        obs, *_ = env.step(a)
        screen = env.ale_env.ale.getScreenRGB()
        seen.append(cv2.resize(cv2.cvtColor(screen, cv2.COLOR_RGB2GRAY), (84, 84),
                               interpolation=cv2.INTER_AREA))
        assert obs.dtype == np.uint8 and obs.shape == (84, 84, 4)
        np.testing.assert_array_equal(obs, np.stack(env.frames, axis=-1))
        np.testing.assert_array_equal(obs[..., -1], seen[-1])
        if t >= 3:  # the stack is the last 4 frames, oldest first
            np.testing.assert_array_equal(obs, np.stack(seen[-4:], axis=-1))


@pytest.mark.parametrize('noop,frames', [(30, 4), (6, 2)])
def test_atari_noop_reset(noop, frames):
    env = make_env(atari_args(noop=noop, frames=frames))
    obs = env.reset(seed=0)
    assert obs.shape == (84, 84, frames)
    assert env.ale_env.ale.getEpisodeFrameNumber() == 4 * noop  # frame skip 4
    assert env.env_info == {'Steps': 0, 'Rewards': 0.0}


def test_atari_reset_restarts_when_game_ends_during_noops():
    env = make_env(atari_args(noop=6, frames=2))
    real_reset, real_step = env.ale_env.reset, env.ale_env.step
    resets, noops = [], []
    env.ale_env.reset = lambda seed=None: resets.append(seed) or real_reset(seed=seed)

    def step(a):
        noops.append(a)
        rgb, r, _, trunc, info = real_step(a)
        return rgb, r, len(resets) == 1 and len(noops) == 3, trunc, info  # first game ends early

    env.ale_env.step = step
    env.reset(seed=7)
    assert resets == [7, None] and noops == [0] * (3 + 6)


def test_atari_sticky_setting():
    for sticky, prob in [(False, 0.0), (True, 0.25)]:
        env = make_env(atari_args(sticky=sticky))
        assert env.ale_env.ale.getFloat('repeat_action_probability') == prob


def test_atari_reward_clipping_and_episodic_sum():
    """A stub emulator step with big rewards: normal clips, ep_rews pays the raw sum."""
    raw = [0.0, 5.0, -3.0, 0.5, 2.0]
    for env_type in ['normal', 'ep_rews']:
        env = make_env(atari_args(env_type=env_type, test_timesteps=len(raw), rews_scale=1.0))
        env.reset(seed=0)
        screen = env.ale_env.ale.getScreenRGB()
        rewards = iter(raw)
        env.ale_env.step = lambda a: (screen, next(rewards), False, False, {})
        steps = [env.step(0) for _ in raw]
        assert [s[4]['dense_reward'] for s in steps] == raw
        assert steps[-1][3] is True
        got = [s[1] for s in steps]
        if env_type == 'normal':
            assert got == [0.0, 1.0, -1.0, 0.5, 1.0]
        else:
            assert got == [0.0] * 4 + [sum(raw)]
