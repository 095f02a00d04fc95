# FIONA roles image: the same image runs `fiona receiver`, `fiona worker`, `fiona scheduler` or `fiona web`.
FROM node:20-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends dcmtk && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY bin ./bin
COPY src ./src
COPY rules ./rules
RUN npm ci --no-audit --no-fund && npm prune --omit=dev
ENV FIONA_DATA_DIR=/data
ENTRYPOINT ["node", "bin/fiona.js"]
