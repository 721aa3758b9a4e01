"""Names of widely installed PyPI distributions, compared with plugin and dependency names to catch
typosquatting. Normalised as PEP 503 says: lower case, runs of ``-``, ``_`` and ``.`` as one ``-``."""

TOP_PYPI_NAMES: frozenset[str] = frozenset(
    """
    aiobotocore aiohttp aiosignal alembic amqp annotated-types anyio apache-airflow argcomplete
    argon2-cffi asgiref asn1crypto astroid async-timeout asyncpg attrs authlib autopep8 awscli
    azure-core azure-identity azure-storage-blob babel backoff bandit bcrypt beautifulsoup4 billiard
    black bleach blinker boto boto3 botocore build cachetools celery certifi cffi chardet
    charset-normalizer click cloudpickle colorama coloredlogs coverage cryptography cycler cython dask
    databricks-sql-connector dataclasses-json decorator defusedxml deprecated dill distlib distro
    django django-rest-framework djangorestframework dnspython docker docopt docutils elasticsearch
    email-validator et-xmlfile exceptiongroup fastapi fastjsonschema filelock flake8 flask flask-cors
    flask-sqlalchemy fonttools frozenlist fsspec gevent gitdb gitpython google-api-core
    google-api-python-client google-auth google-cloud-bigquery google-cloud-core google-cloud-storage
    googleapis-common-protos greenlet grpcio grpcio-status gunicorn h11 h5py httpcore httplib2 httpx
    huggingface-hub humanfriendly hypothesis idna imageio importlib-metadata importlib-resources
    iniconfig isodate isort itsdangerous jaraco-classes jedi jinja2 jmespath joblib jsonpatch
    jsonpointer jsonschema jupyter jupyter-client jupyter-core keras keyring kiwisolver kombu
    lazy-object-proxy lxml mako markdown markupsafe marshmallow matplotlib mccabe mock more-itertools
    msal msgpack multidict mypy mypy-extensions mysql-connector-python mysqlclient nest-asyncio
    networkx nltk nodeenv numpy oauthlib openai openpyxl opencv-python opentelemetry-api
    opentelemetry-sdk orjson packaging pandas paramiko parso pathspec pbr pendulum pexpect pillow pip
    pipenv platformdirs plotly pluggy poetry poetry-core portalocker prometheus-client prompt-toolkit
    proto-plus protobuf psutil psycopg psycopg2 psycopg2-binary ptyprocess py pyarrow pyasn1
    pyasn1-modules pycodestyle pycparser pycryptodome pycryptodomex pydantic pydantic-core
    pydantic-settings pyflakes pygments pyjwt pylint pymongo pymysql pynacl pyopenssl pyparsing
    pyrsistent pyserial pysocks pytest pytest-asyncio pytest-cov pytest-mock pytest-xdist
    python-dateutil python-dotenv python-json-logger python-multipart pytz pywin32 pyyaml pyzmq redis
    regex requests requests-oauthlib requests-toolbelt rich rsa ruamel-yaml ruff s3fs s3transfer
    scikit-learn scipy scrapy seaborn selenium sentry-sdk setuptools shapely simplejson six smart-open
    smmap sniffio snowflake-connector-python sortedcontainers soupsieve sqlalchemy sqlmodel sqlparse
    starlette structlog sympy tabulate tenacity termcolor tensorboard tensorflow threadpoolctl tiktoken
    tokenizers toml tomli tomlkit toolz torch torchvision tornado tox tqdm traitlets transformers typer
    types-requests typing-extensions typing-inspect tzdata tzlocal ujson urllib3 uvicorn uvloop
    virtualenv waitress watchdog wcwidth websocket-client websockets werkzeug wheel wrapt xlrd
    xmltodict yarl zipp zope-interface
    """.split()
)
