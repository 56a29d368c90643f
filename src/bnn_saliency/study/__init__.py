"""The study: one module per chapter (its tables, figures and sentences) and ``common``
(the models, images and pairs a chapter loops over). The reusable library is in
``methods``, ``evaluation``, ``models``, ``theory``, ``stats`` and ``verdicts``."""

