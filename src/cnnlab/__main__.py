# `python -m cnnlab` and `torchrun -m cnnlab` both land here.
from cnnlab.cli import entry

if __name__ == "__main__":
    entry()
