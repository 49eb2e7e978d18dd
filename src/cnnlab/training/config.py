"""Typed training configuration; the whole object is saved as JSON into every run and checkpoint."""

from dataclasses import asdict, dataclass, fields


@dataclass
class TrainConfig:
    # what to train, on what (defaults: the chapter's experiment)
    model: str = "chapter-cnn"  # registry name, see `cnnlab models`
    dataset: str = "mnist"  # dataset name, see cnnlab.data.DATASETS
    data_dir: str | None = None  # folder with the dataset files (else $CNNLAB_DATA, cache, download)
    width: float = 1.0  # channel-width multiplier passed to the model builder
    aux: bool = True  # GoogLeNet auxiliary classifiers in training (ignored by other models)
    # optimisation (chapter: Adam, lr 2e-4, batch 256, 10 epochs, plain cross-entropy)
    epochs: int = 10  # passes over the training set
    batch_size: int = 256  # global batch size (split across DDP ranks)
    lr: float = 2e-4  # peak learning rate
    optimizer: str = "adam"  # adam | adamw | sgd (Nesterov momentum)
    betas: tuple[float, float] = (0.9, 0.999)  # Adam/AdamW betas
    momentum: float = 0.9  # SGD momentum
    weight_decay: float = 0.0  # L2 (adam, sgd) or decoupled (adamw) weight decay
    schedule: str = "constant"  # constant | onecycle | cosine | step
    warmup_epochs: float = 0.0  # linear warm-up length (cosine/step/constant)
    label_smoothing: float = 0.0  # cross-entropy label smoothing
    ema: float = 0.0  # EMA decay of weights per step (0 = off); evaluation uses the EMA weights
    augment: str = (
        "none"  # batched augmentation spec, see cnnlab.data.augment (e.g. "translate=2,erase=0.25")
    )
    tta: bool = False  # test-time augmentation at evaluation
    time_budget: float = 0.0  # seconds: plan the schedule to end within this wall time (0 = off)
    recipe: str | None = None  # named recipe whose values were applied (see cnnlab.training.recipes)
    # data split and stopping
    val_split: float = 0.0  # fraction of the training set held out (seeded) for model selection
    patience: int = 0  # early stopping after this many epochs without val improvement (0 = off)
    # your own image folders (--dataset ROOT or --data-dir ROOT; --val-split is then per class)
    image_size: int = (
        0  # shorter side resized to N, centre crop (0 = from the data: 28 handwriting, up to 64 photos)
    )
    preprocess: str = "auto"  # how images are read: auto (decided from the folder, and said) | digit | photo
    channels: int = 0  # 1 or 3 (0 = 1 when every image is greyscale, else 3)
    classes: str = ""  # comma-separated class names: fixes their order or picks a subset ("" = all)
    test_split: float = 0.2  # per-class fraction held out for testing when there is no test/ folder
    split_seed: int = 0  # seeds the folder split (--seed changes the weights, not the split)
    strict: bool = False  # an unreadable image is an error instead of being skipped and reported
    balance: bool = False  # weight the loss by inverse class frequency (imbalanced datasets)
    decode_workers: int = 0  # processes decoding images on a first run (0 = one per CPU core)
    # transfer learning: start from trained weights (cnnlab.training.finetune, cnnlab.training.transfer)
    pretrained: bool = False  # torchvision's ImageNet weights for --model (downloaded, SHA-256 checked)
    weights: str | None = (
        None  # start from a torchvision/timm .pth, a .safetensors file or a cnnlab run folder
    )
    finetune: str = (
        "full"  # with weights: full (head first, then all layers) | probe (frozen body, linear head)
    )
    freeze_epochs: int = (
        1  # full: epochs (of --epochs) in which only the new classifier (and BatchNorm) trains
    )
    lr_mult: float = 100.0  # full: the head's learning rate / the earliest layers' (discriminative rates)
    train_per_class: int = 0  # use only N training images per class, seeded and stratified (0 = all)
    limit_test: int = 0  # evaluate each epoch on the first N test images only (0 = all; then `cnnlab eval`)
    # run control
    seed: int = 0  # seeds weights, data order, augmentation
    out: str | None = (
        None  # run folder (config, metrics, checkpoints, curves); none: a new runs/<model>-<dataset>-<n>
    )
    overwrite: bool = False  # allow reusing a non-empty --out
    resume: bool = False  # continue the run in --out from its resume state
    checkpoint_every: int = 0  # also save resume state every N steps (0 = only at epoch ends / signals)
    deterministic: bool = False  # bit-identical repeat runs (fixed threads, deterministic kernels)
    threads: int = 0  # torch intra-op threads (0 = PyTorch's default)
    channels_last: bool = True  # NHWC memory format: faster convolutions on CPU (oneDNN)
    sync_bn: bool = False  # SyncBatchNorm under DDP
    eval_batch_size: int = 1024  # evaluation batch size (inference mode)
    eval_every: int = 1  # evaluate (test, val) after every Nth epoch and the last (0 = after the last only)
    tensorboard: bool = False  # also log to TensorBoard (needs the tensorboard package)
    max_steps: int = 0  # stop after this many optimiser steps (0 = no limit; for smoke tests)
    limit_train: int = 0  # use only the first N training images (0 = all; for smoke tests)
    # number format (see cnnlab.training.precision)
    precision: str = "auto"  # fp32 | bf16 (autocast) | auto: bf16 if native and the recipe was verified

    def __post_init__(self) -> None:
        from cnnlab.training.validate import validate  # lazy: it reads the model/dataset registries

        validate(self)  # every field's type and range, and combinations that cannot work (exit 2)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})  # validation makes betas a tuple
