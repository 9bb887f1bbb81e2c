import { render } from 'preact';
import { App } from './app';
import { createClient } from './client';
import { LiveStore } from './store';
import './style.css';

const store = new LiveStore();
createClient().then((client) => {
  // Exposed for the benchmark and end-to-end scripts.
  (window as unknown as { __strata: unknown }).__strata = { client, store };
  render(<App client={client} store={store} />, document.getElementById('app')!);
});
