"""Operations: work pools, the GPU tag limit and the deployments of infra/prefect.yaml, the
local server `hoprec ui` runs, and runs created through deployments. Their settings are in
`tasks/defaults.py`."""
