/**
 * Accounts: isolated subject namespaces (nats-server's accounts). Each account has its own
 * sublist, so a message published in one reaches only subscriptions of the same account;
 * the only ways across are the imports of its configuration (account-imports.ts). Every
 * connection belongs to one account: `$G` (the global account) unless its user is defined
 * in the `accounts` block. JetStream is per account too (core/start.ts gives every
 * JetStream-enabled account its own, over its own store directory).
 *
 * The registry is the one place accounts are found by name. `resolve` creates an account
 * on first use (operator mode registers the accounts of its JWTs that way) and tells the
 * listeners, which start the account's JetStream.
 */
import { Sublist } from '../subjects/sublist.ts';
import type { Logger } from '../util/logger.ts';
import { GLOBAL_ACCOUNT, type AccountConfig, type AccountsConfig } from './account-config.ts';
import { wireImports } from './account-imports.ts';
import { InternalClient } from './internal-client.ts';
import type { Subscription } from './subscription.ts';

export { GLOBAL_ACCOUNT };

export class Account {
  readonly name: string;
  readonly config: AccountConfig;
  /** The account's subscriptions: clients', its JetStream's, and its imports' forwarders. */
  readonly sublist: Sublist<Subscription>;
  /** The account's own internal client: the forwarders of imports subscribe and publish with it. */
  readonly client: InternalClient;

  constructor(options: { config: AccountConfig; cid: number }) {
    this.name = options.config.name;
    this.config = options.config;
    this.sublist = new Sublist<Subscription>();
    this.client = new InternalClient({ cid: options.cid, name: `account ${this.name}`, sublist: this.sublist });
  }
}

/** Told synchronously when `resolve` creates an account after the registry was built. */
export type AccountCreatedListener = (account: Account) => void;

/** An account configuration with nothing but a name: no imports, no exports. */
export function bareAccountConfig(name: string, options: { isJetStreamEnabled?: boolean } = {}): AccountConfig {
  return { name, isJetStreamEnabled: options.isJetStreamEnabled ?? false, exports: [], imports: [] };
}

export class AccountRegistry {
  /** `$G`: users of `authorization`, and everybody when no auth is configured. */
  readonly global: Account;
  readonly #accounts = new Map<string, Account>();
  readonly #newCid: () => number;
  readonly #listeners = new Set<AccountCreatedListener>();

  /**
   * Creates `$G` and the configured accounts, then wires their imports (the config
   * was checked: every import names an account and an export that exist).
   */
  constructor(options: { configs: AccountsConfig; newCid: () => number; log: Logger }) {
    this.#newCid = options.newCid;
    this.global = this.#create(options.configs.get(GLOBAL_ACCOUNT) ?? bareAccountConfig(GLOBAL_ACCOUNT));
    for (const config of options.configs.values()) {
      if (config.name !== GLOBAL_ACCOUNT) this.#create(config);
    }
    wireImports({ accounts: this.#accounts, log: options.log });
  }

  get(name: string): Account | undefined {
    return this.#accounts.get(name);
  }

  /**
   * The account called `name`, created on first use (with `isJetStreamEnabled` as given;
   * no imports or exports) and announced to the listeners.
   */
  resolve(name: string, options: { isJetStreamEnabled?: boolean } = {}): Account {
    const known = this.#accounts.get(name);
    if (known !== undefined) return known;
    const account = this.#create(bareAccountConfig(name, options));
    for (const listener of this.#listeners) listener(account);
    return account;
  }

  /** Registers a listener for accounts `resolve` creates; returns its removal. */
  onCreated(listener: AccountCreatedListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Every account, `$G` first. */
  values(): IterableIterator<Account> {
    return this.#accounts.values();
  }

  #create(config: AccountConfig): Account {
    const account = new Account({ config, cid: this.#newCid() });
    this.#accounts.set(account.name, account);
    return account;
  }
}
