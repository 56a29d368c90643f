"""``python -m bnn_saliency audit MODEL ...``: see :mod:`bnn_saliency.auditing.cli`."""

import sys


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] != "audit":
        print("usage: python -m bnn_saliency audit MODEL [--images DIR | --cifar10 N] ...",
              file=sys.stderr)
        return 2
    from .auditing.cli import main as audit_main

    return audit_main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
