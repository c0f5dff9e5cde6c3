from learner.learner import Learner
from learner.tester import Tester

__all__ = ['Learner', 'Tester']
