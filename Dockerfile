# Voronka in a container: the wheel (code, catalogs, shipped pipeline files) and its
# dependencies at the versions of requirements.lock, run as an unprivileged user.
#   docker build -t voronka .
#   docker run --env-file .env -v voronka-data:/data voronka          (long polling, SQLite)
# compose.yaml runs it (and the PostgreSQL + Redis + webhook workers set-up): see README.

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
RUN python -m venv /venv
WORKDIR /src
# The dependencies first: this layer is rebuilt only when the lock or pyproject.toml change.
COPY pyproject.toml requirements.lock README.md ./
RUN /venv/bin/python -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))\
['project']['dependencies'], sep='\n')" >/tmp/deps.txt \
    && /venv/bin/pip install -c requirements.lock -r /tmp/deps.txt
COPY bot bot
COPY handlers handlers
COPY services services
COPY storage storage
COPY config config
RUN /venv/bin/pip install --no-deps -c requirements.lock . \
    && /venv/bin/voronka check-config >/dev/null

FROM python:3.11-slim
ENV PATH=/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DATABASE_URL=sqlite+aiosqlite:////data/voronka.db
COPY --from=build /venv /venv
RUN useradd --create-home --uid 10001 voronka \
    && mkdir -p /data && chown voronka:voronka /data
USER voronka
WORKDIR /data
VOLUME ["/data"]
# The webhook server (`voronka webhook`): Telegram updates, POST /api/leads, GET /healthz.
EXPOSE 8080
CMD ["voronka", "run"]
