"""When a run does what, epoch by epoch (pure functions of the config, so they are easy to test).

`evaluation_due`: `--eval-every N` evaluates on the test set (and the validation split) after every Nth epoch
and always after the last one; 0 evaluates after the last epoch only. A record recipe that is judged on its
final accuracy alone then spends no time on evaluations nobody reads (an evaluation of all 10,000 MNIST
test images with TTA costs about a tenth of a `best` epoch).
"""


def evaluation_due(every: int, epoch: int, last: bool) -> bool:
    """True when epoch `epoch` (1-based) ends with an evaluation: the last epoch always does."""
    return last or (every > 0 and epoch % every == 0)
