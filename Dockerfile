# Licentric Ledger API / worker image. The same image runs `licentric serve`,
# `licentric worker` and `licentric migrate` (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY ledger ./ledger
COPY projections ./projections
COPY api ./api
COPY workers ./workers
RUN pip install . \
    && useradd --system --home-dir /data --create-home licentric

# Never root at runtime; /data holds nothing unless the embedded database is used.
USER licentric
ENV LICENTRIC_DATA_DIR=/data \
    LICENTRIC_HOST=0.0.0.0 \
    LICENTRIC_PORT=8000
EXPOSE 8000

HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/api/v1/health', timeout=2).status != 200)"

ENTRYPOINT ["licentric"]
CMD ["serve"]
