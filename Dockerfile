FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY accrochage ./accrochage
RUN pip install --no-cache-dir .
WORKDIR /data
ENTRYPOINT ["accrochage"]
CMD ["worker"]
